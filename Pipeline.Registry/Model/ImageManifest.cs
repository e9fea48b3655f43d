using System.Text.Json;

namespace Pipeline.Registry.Model;

/// <summary>
/// An OCI image manifest (or a Docker v2 schema 2 manifest read from a base). <see cref="ToJsonBytes"/>
/// gives canonical bytes: the same values always give the same digest.
/// </summary>
public sealed record ImageManifest(
    Descriptor Config,
    IReadOnlyList<Descriptor> Layers,
    string MediaType = MediaTypes.OciManifest,
    IReadOnlyDictionary<string, string>? Annotations = null,
    Descriptor? Subject = null,
    string? ArtifactType = null)
{
    private const string Code = "REG-MANIFEST-001";

    /// <summary>The canonical JSON bytes of this manifest.</summary>
    public byte[] ToJsonBytes()
    {
        if (!MediaTypes.IsManifest(MediaType))
            throw new RegistryException(Code, $"'{Safe.Printable(MediaType)}' is not an image manifest media type.");
        return OciJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", MediaType);
            OciJson.WriteOptional(w, "artifactType", ArtifactType);
            Config.Write(w, "config");
            w.WriteStartArray("layers");
            foreach (var layer in Layers) layer.Write(w);
            w.WriteEndArray();
            Subject?.Write(w, "subject");
            OciJson.WriteMap(w, "annotations", Annotations);
            w.WriteEndObject();
        });
    }

    /// <summary>
    /// Parses and validates a manifest. <paramref name="contentType"/> (the registry's Content-Type)
    /// must agree with the document's own mediaType when both are present.
    /// </summary>
    public static ImageManifest Parse(ReadOnlyMemory<byte> bytes, string? contentType = null)
    {
        using var doc = OciJson.Parse(bytes, Code, "image manifest");
        var r = new OciJson.Reader(doc.RootElement, Code, "").Object();
        if (r.RequiredInt64("schemaVersion") != 2) throw r.Fail("'schemaVersion' must be 2");
        var mediaType = r.OptionalString("mediaType") ?? contentType ?? MediaTypes.OciManifest;
        if (!MediaTypes.IsManifest(mediaType))
            throw r.Fail($"'mediaType' is '{Safe.Printable(mediaType)}', not an image manifest type");
        if (contentType is not null && MediaTypes.IsManifest(contentType) && contentType != mediaType)
            throw r.Fail($"'mediaType' '{mediaType}' disagrees with the content type '{Safe.Printable(contentType)}'");
        if (doc.RootElement.TryGetProperty("manifests", out _)) throw r.Fail("an image manifest must not have 'manifests'");
        var config = Descriptor.Read(r.RequiredObject("config"));
        var layers = (r.OptionalArray("layers") ?? throw r.Fail("'layers' is required")).Select(Descriptor.Read).ToArray();
        var subject = r.OptionalObject("subject") is { } s ? Descriptor.Read(s) : null;
        return new ImageManifest(config, layers, mediaType, r.OptionalStringMap("annotations"), subject, r.OptionalString("artifactType"));
    }
}

/// <summary>An OCI image index (or a Docker manifest list read from a base).</summary>
public sealed record ImageIndex(
    IReadOnlyList<Descriptor> Manifests,
    string MediaType = MediaTypes.OciIndex,
    IReadOnlyDictionary<string, string>? Annotations = null,
    Descriptor? Subject = null,
    string? ArtifactType = null)
{
    private const string Code = "REG-INDEX-001";

    /// <summary>The canonical JSON bytes of this index.</summary>
    public byte[] ToJsonBytes()
    {
        if (!MediaTypes.IsIndex(MediaType))
            throw new RegistryException(Code, $"'{Safe.Printable(MediaType)}' is not an index media type.");
        return OciJson.Write(w =>
        {
            w.WriteStartObject();
            w.WriteNumber("schemaVersion", 2);
            w.WriteString("mediaType", MediaType);
            OciJson.WriteOptional(w, "artifactType", ArtifactType);
            w.WriteStartArray("manifests");
            foreach (var m in Manifests) m.Write(w);
            w.WriteEndArray();
            Subject?.Write(w, "subject");
            OciJson.WriteMap(w, "annotations", Annotations);
            w.WriteEndObject();
        });
    }

    /// <summary>Parses and validates an index.</summary>
    public static ImageIndex Parse(ReadOnlyMemory<byte> bytes, string? contentType = null)
    {
        using var doc = OciJson.Parse(bytes, Code, "image index");
        var r = new OciJson.Reader(doc.RootElement, Code, "").Object();
        if (r.RequiredInt64("schemaVersion") != 2) throw r.Fail("'schemaVersion' must be 2");
        var mediaType = r.OptionalString("mediaType") ?? contentType ?? MediaTypes.OciIndex;
        if (!MediaTypes.IsIndex(mediaType)) throw r.Fail($"'mediaType' is '{Safe.Printable(mediaType)}', not an index type");
        if (doc.RootElement.TryGetProperty("config", out _) || doc.RootElement.TryGetProperty("layers", out _))
            throw r.Fail("an index must not have 'config' or 'layers'");
        var manifests = (r.OptionalArray("manifests") ?? throw r.Fail("'manifests' is required")).Select(Descriptor.Read).ToArray();
        var subject = r.OptionalObject("subject") is { } s ? Descriptor.Read(s) : null;
        return new ImageIndex(manifests, mediaType, r.OptionalStringMap("annotations"), subject, r.OptionalString("artifactType"));
    }
}
