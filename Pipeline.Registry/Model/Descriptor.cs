using System.Text.Json;

namespace Pipeline.Registry.Model;

/// <summary>An OCI platform (for index entries and base selection).</summary>
public sealed record Platform(string Architecture, string Os, string? Variant = null, string? OsVersion = null)
{
    internal void Write(Utf8JsonWriter w, string name)
    {
        w.WriteStartObject(name);
        w.WriteString("architecture", Architecture);
        w.WriteString("os", Os);
        OciJson.WriteOptional(w, "os.version", OsVersion);
        OciJson.WriteOptional(w, "variant", Variant);
        w.WriteEndObject();
    }

    internal static Platform Read(OciJson.Reader r) =>
        new(r.RequiredString("architecture"), r.RequiredString("os"), r.OptionalString("variant"), r.OptionalString("os.version"));
}

/// <summary>
/// An OCI content descriptor: media type, digest and size of the referenced bytes, with optional
/// annotations, platform (index entries) and artifact type.
/// </summary>
public sealed record Descriptor
{
    public Descriptor(string MediaType, Digest Digest, long Size,
        IReadOnlyDictionary<string, string>? Annotations = null, Platform? Platform = null, string? ArtifactType = null)
    {
        if (!OciJson.IsValidMediaType(MediaType))
            throw new RegistryException("REG-DESC-001", $"Invalid media type '{Safe.Printable(MediaType)}' (RFC 6838 type/subtype expected).");
        if (Size < 0) throw new RegistryException("REG-DESC-001", $"Descriptor size must be >= 0, got {Size}.");
        if (ArtifactType is not null && !OciJson.IsValidMediaType(ArtifactType))
            throw new RegistryException("REG-DESC-001", $"Invalid artifact type '{Safe.Printable(ArtifactType)}'.");
        this.MediaType = MediaType;
        this.Digest = Digest ?? throw new ArgumentNullException(nameof(Digest));
        this.Size = Size;
        this.Annotations = Annotations;
        this.Platform = Platform;
        this.ArtifactType = ArtifactType;
    }

    public string MediaType { get; }
    public Digest Digest { get; }
    public long Size { get; }
    public IReadOnlyDictionary<string, string>? Annotations { get; }
    public Platform? Platform { get; }
    public string? ArtifactType { get; }

    internal void Write(Utf8JsonWriter w, string? name = null)
    {
        if (name is null) w.WriteStartObject(); else w.WriteStartObject(name);
        w.WriteString("mediaType", MediaType);
        w.WriteString("digest", Digest.ToString());
        w.WriteNumber("size", Size);
        OciJson.WriteMap(w, "annotations", Annotations);
        Platform?.Write(w, "platform");
        OciJson.WriteOptional(w, "artifactType", ArtifactType);
        w.WriteEndObject();
    }

    internal static Descriptor Read(OciJson.Reader r)
    {
        r.Object();
        var mediaType = r.RequiredString("mediaType");
        if (!OciJson.IsValidMediaType(mediaType)) throw r.Fail($"'{r.Path}.mediaType' is not a valid media type");
        var digestText = r.RequiredString("digest");
        if (!Digest.TryParse(digestText, out var digest, out var reason)) throw r.Fail($"'{r.Path}.digest' is invalid: {reason}");
        var size = r.RequiredInt64("size");
        if (size < 0) throw r.Fail($"'{r.Path}.size' must be >= 0");
        var artifactType = r.OptionalString("artifactType");
        if (artifactType is not null && !OciJson.IsValidMediaType(artifactType)) throw r.Fail($"'{r.Path}.artifactType' is not a valid media type");
        var platform = r.OptionalObject("platform") is { } p ? Platform.Read(p) : null;
        return new Descriptor(mediaType, digest, size, r.OptionalStringMap("annotations"), platform, artifactType);
    }
}
