using System.Text.Json;

namespace Pipeline.Registry.Model;

/// <summary>The runtime settings of an image (the <c>config</c> object of the OCI image config).</summary>
public sealed record ContainerConfig(
    string? User = null,
    IReadOnlyList<string>? Env = null,
    IReadOnlyList<string>? Entrypoint = null,
    IReadOnlyList<string>? Cmd = null,
    string? WorkingDir = null,
    IReadOnlyList<string>? ExposedPorts = null,
    IReadOnlyDictionary<string, string>? Labels = null,
    string? StopSignal = null,
    IReadOnlyList<string>? Volumes = null,
    IReadOnlyDictionary<string, string>? Extra = null)
{
    /// <summary>Names of the fields this model reads; anything else is kept verbatim in <see cref="Extra"/>.</summary>
    internal static readonly HashSet<string> Known = ["User", "Env", "Entrypoint", "Cmd", "WorkingDir", "ExposedPorts", "Labels", "StopSignal", "Volumes"];

    internal void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject("config");
        OciJson.WriteOptional(w, "User", User);
        WriteKeySet(w, "ExposedPorts", ExposedPorts);
        OciJson.WriteArray(w, "Env", Env);
        OciJson.WriteArray(w, "Entrypoint", Entrypoint);
        OciJson.WriteArray(w, "Cmd", Cmd);
        WriteKeySet(w, "Volumes", Volumes);
        OciJson.WriteOptional(w, "WorkingDir", WorkingDir);
        OciJson.WriteMap(w, "Labels", Labels);
        OciJson.WriteOptional(w, "StopSignal", StopSignal);
        OciJson.WriteExtra(w, Extra, Known);
        w.WriteEndObject();
    }

    private static void WriteKeySet(Utf8JsonWriter w, string name, IReadOnlyList<string>? keys)
    {
        if (keys is null) return;
        w.WriteStartObject(name);
        foreach (var k in keys.Distinct(StringComparer.Ordinal).OrderBy(k => k, StringComparer.Ordinal))
        {
            w.WriteStartObject(k);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    internal static ContainerConfig Read(OciJson.Reader r) => new(
        r.OptionalString("User"),
        r.OptionalStringArray("Env"),
        r.OptionalStringArray("Entrypoint"),
        r.OptionalStringArray("Cmd"),
        r.OptionalString("WorkingDir"),
        r.OptionalKeySet("ExposedPorts"),
        r.OptionalStringMap("Labels"),
        r.OptionalString("StopSignal"),
        r.OptionalKeySet("Volumes"),
        r.Unknown(Known));
}

/// <summary>The layer chain of an image: <c>type</c> is always <c>layers</c>; one diffID per layer.</summary>
public sealed record RootFs(IReadOnlyList<Digest> DiffIds, string Type = "layers");

/// <summary>One history entry of an image config.</summary>
public sealed record HistoryEntry(
    DateTimeOffset? Created = null,
    string? CreatedBy = null,
    string? Author = null,
    string? Comment = null,
    bool EmptyLayer = false);

/// <summary>
/// The OCI image configuration (<c>application/vnd.oci.image.config.v1+json</c>). Fields this model
/// does not know (top level and in <c>config</c>, e.g. Docker's <c>Healthcheck</c>, <c>OnBuild</c>,
/// <c>Shell</c>) are kept as raw JSON in <c>Extra</c> and written back, sorted by name, after the known ones.
/// </summary>
public sealed record ImageConfig(
    string Architecture,
    string Os,
    RootFs RootFs,
    ContainerConfig? Config = null,
    IReadOnlyList<HistoryEntry>? History = null,
    DateTimeOffset? Created = null,
    string? Author = null,
    string? Variant = null,
    string? OsVersion = null,
    IReadOnlyDictionary<string, string>? Extra = null)
{
    private static readonly HashSet<string> KnownTop = ["created", "author", "architecture", "variant", "os", "os.version", "config", "rootfs", "history"];
    private const string Code = "REG-CONFIG-001";

    /// <summary>The canonical JSON bytes of this config.</summary>
    public byte[] ToJsonBytes() => OciJson.Write(w =>
    {
        w.WriteStartObject();
        if (Created is { } created) w.WriteString("created", OciJson.FormatTime(created));
        OciJson.WriteOptional(w, "author", Author);
        w.WriteString("architecture", Architecture);
        OciJson.WriteOptional(w, "variant", Variant);
        w.WriteString("os", Os);
        OciJson.WriteOptional(w, "os.version", OsVersion);
        Config?.Write(w);
        w.WriteStartObject("rootfs");
        w.WriteString("type", RootFs.Type);
        w.WriteStartArray("diff_ids");
        foreach (var d in RootFs.DiffIds) w.WriteStringValue(d.ToString());
        w.WriteEndArray();
        w.WriteEndObject();
        if (History is not null)
        {
            w.WriteStartArray("history");
            foreach (var h in History)
            {
                w.WriteStartObject();
                if (h.Created is { } hc) w.WriteString("created", OciJson.FormatTime(hc));
                OciJson.WriteOptional(w, "created_by", h.CreatedBy);
                OciJson.WriteOptional(w, "author", h.Author);
                OciJson.WriteOptional(w, "comment", h.Comment);
                if (h.EmptyLayer) w.WriteBoolean("empty_layer", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        OciJson.WriteExtra(w, Extra, KnownTop);
        w.WriteEndObject();
    });

    /// <summary>Parses and validates an image config (OCI or Docker).</summary>
    public static ImageConfig Parse(ReadOnlyMemory<byte> bytes)
    {
        using var doc = OciJson.Parse(bytes, Code, "image config");
        var r = new OciJson.Reader(doc.RootElement, Code, "").Object();
        var architecture = r.RequiredString("architecture");
        var os = r.RequiredString("os");
        if (architecture.Length == 0 || os.Length == 0) throw r.Fail("'architecture' and 'os' must not be empty");
        var rootfs = r.RequiredObject("rootfs");
        var type = rootfs.RequiredString("type");
        if (type != "layers") throw r.Fail($"'rootfs.type' must be 'layers', got '{Safe.Printable(type)}'");
        var diffIds = (rootfs.OptionalStringArray("diff_ids") ?? throw r.Fail("'rootfs.diff_ids' is required"))
            .Select((d, i) => Digest.TryParse(d, out var dg, out var why) ? dg : throw r.Fail($"'rootfs.diff_ids[{i}]' is invalid: {why}"))
            .ToArray();
        var history = r.OptionalArray("history")?.Select(h =>
        {
            h.Object();
            var hc = h.OptionalString("created");
            return new HistoryEntry(
                hc is null ? null : OciJson.ParseTime(hc, Code, h.Path + ".created"),
                h.OptionalString("created_by"), h.OptionalString("author"), h.OptionalString("comment"),
                h.OptionalBool("empty_layer"));
        }).ToArray();
        var created = r.OptionalString("created");
        var historyLayers = history?.Count(h => !h.EmptyLayer);
        if (historyLayers is { } n && history!.Length > 0 && n != diffIds.Length)
            throw r.Fail($"'history' has {n} non-empty entries but 'rootfs.diff_ids' has {diffIds.Length}");
        return new ImageConfig(
            architecture, os, new RootFs(diffIds, type),
            r.OptionalObject("config") is { } c ? ContainerConfig.Read(c) : null,
            history,
            created is null ? null : OciJson.ParseTime(created, Code, "created"),
            r.OptionalString("author"), r.OptionalString("variant"), r.OptionalString("os.version"), r.Unknown(KnownTop));
    }
}
