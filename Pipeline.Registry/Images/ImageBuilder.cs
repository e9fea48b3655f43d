using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Images;

/// <summary>The base an image is built on: its manifest (with the layer descriptors) and its config.</summary>
public sealed record BaseImage(ImageManifest Manifest, ImageConfig Config);

/// <summary>
/// Settings applied over the base. Null means "keep the base's value". <see cref="Env"/> and
/// <see cref="Labels"/> are merged over the base by key; <see cref="ExposedPorts"/> are added.
/// Setting <see cref="Entrypoint"/> clears the base's Cmd unless <see cref="Cmd"/> is also given
/// (Docker's rule). <see cref="Created"/> is part of the content: pin it (e.g. to the tag time).
/// </summary>
public sealed record ImageSettings
{
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyDictionary<string, string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string>? ExposedPorts { get; init; }
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
    public DateTimeOffset? Created { get; init; }
    public string? HistoryComment { get; init; }
    public string? CreatedBy { get; init; }
    public IReadOnlyDictionary<string, string>? ManifestAnnotations { get; init; }
    /// <summary>
    /// Exec-form health check command (Docker's <c>config.Healthcheck.Test = ["CMD", ...]</c>); replaces
    /// the base's. Null keeps the base's health check (unknown config fields are preserved).
    /// </summary>
    public IReadOnlyList<string>? Healthcheck { get; init; }
    /// <summary>Platform for an image built from scratch (default linux/amd64); ignored with a base.</summary>
    public Platform? Platform { get; init; }
}

/// <summary>A composed image: canonical manifest and config bytes with their digests, and its layers.</summary>
public sealed record BuiltImage(
    byte[] ManifestBytes,
    Digest ManifestDigest,
    byte[] ConfigBytes,
    Digest ConfigDigest,
    IReadOnlyList<Layer> NewLayers,
    IReadOnlyList<Descriptor> AllLayers)
{
    /// <summary>The manifest's media type (always OCI image manifest).</summary>
    public string ManifestMediaType => MediaTypes.OciManifest;

    /// <summary>The descriptor of the config blob.</summary>
    public Descriptor ConfigDescriptor => new(MediaTypes.OciConfig, ConfigDigest, ConfigBytes.LongLength);

    /// <summary>The descriptor of the manifest (for an index or a referrer's subject).</summary>
    public Descriptor ManifestDescriptor => new(MediaTypes.OciManifest, ManifestDigest, ManifestBytes.LongLength);
}

/// <summary>
/// Composes an OCI image from an optional base, new layers and settings. Pure: the same inputs give
/// the same bytes (no clock is read; <see cref="ImageSettings.Created"/> is used when given).
/// </summary>
public static class ImageBuilder
{
    /// <summary>Builds the manifest and config. Errors: <c>REG-IMAGE-001</c> (inconsistent base / bad settings).</summary>
    public static BuiltImage Build(BaseImage? baseImage, IReadOnlyList<Layer> newLayers, ImageSettings settings)
    {
        ArgumentNullException.ThrowIfNull(newLayers);
        ArgumentNullException.ThrowIfNull(settings);
        var baseConfig = baseImage?.Config;
        var baseLayers = baseImage?.Manifest.Layers ?? [];
        if (baseImage is not null)
        {
            if (baseConfig!.RootFs.DiffIds.Count != baseLayers.Count)
                throw Fail($"the base has {baseLayers.Count} layers but {baseConfig.RootFs.DiffIds.Count} diff_ids");
            foreach (var l in baseLayers)
                if (!MediaTypes.IsLayer(l.MediaType)) throw Fail($"base layer {l.Digest} has unsupported media type '{Safe.Printable(l.MediaType)}'");
        }

        var old = baseConfig?.Config ?? new ContainerConfig();
        var container = new ContainerConfig(
            User: settings.User ?? old.User,
            Env: MergeEnv(old.Env, settings.Env),
            Entrypoint: settings.Entrypoint ?? old.Entrypoint,
            Cmd: settings.Cmd ?? (settings.Entrypoint is null ? old.Cmd : null),
            WorkingDir: settings.WorkingDir ?? old.WorkingDir,
            ExposedPorts: MergePorts(old.ExposedPorts, settings.ExposedPorts),
            Labels: MergeMap(old.Labels, settings.Labels),
            StopSignal: old.StopSignal,
            Volumes: old.Volumes,
            Extra: WithHealthcheck(old.Extra, settings.Healthcheck));

        var history = new List<HistoryEntry>(baseConfig?.History ?? []);
        if (baseConfig is not null && history.Count == 0)
            history.AddRange(baseConfig.RootFs.DiffIds.Select(_ => new HistoryEntry(CreatedBy: "base layer")));
        foreach (var _ in newLayers)
            history.Add(new HistoryEntry(settings.Created, settings.CreatedBy ?? "Pipeline.Registry", Comment: settings.HistoryComment));

        var platform = settings.Platform ?? new Platform("amd64", "linux");
        var config = new ImageConfig(
            Architecture: baseConfig?.Architecture ?? platform.Architecture,
            Os: baseConfig?.Os ?? platform.Os,
            RootFs: new RootFs([.. baseConfig?.RootFs.DiffIds ?? [], .. newLayers.Select(l => l.DiffId)]),
            Config: container,
            History: history,
            Created: settings.Created,
            Variant: baseConfig is null ? platform.Variant : baseConfig.Variant,
            OsVersion: baseConfig is null ? platform.OsVersion : baseConfig.OsVersion,
            Extra: baseConfig?.Extra);
        var configBytes = config.ToJsonBytes();
        var configDigest = Digest.Compute(configBytes);

        var allLayers = baseLayers
            .Select(l => l.MediaType == MediaTypes.DockerLayerTarGzip ? new Descriptor(MediaTypes.OciLayerTarGzip, l.Digest, l.Size) : l)
            .Concat(newLayers.Select(l => l.Descriptor))
            .ToArray();
        var manifest = new ImageManifest(
            new Descriptor(MediaTypes.OciConfig, configDigest, configBytes.LongLength),
            allLayers,
            Annotations: settings.ManifestAnnotations is { Count: > 0 } a ? a : null);
        var manifestBytes = manifest.ToJsonBytes();
        return new BuiltImage(manifestBytes, Digest.Compute(manifestBytes), configBytes, configDigest, newLayers.ToArray(), allLayers);
    }

    private static IReadOnlyDictionary<string, string>? WithHealthcheck(IReadOnlyDictionary<string, string>? extra, IReadOnlyList<string>? healthcheck)
    {
        if (healthcheck is null) return extra;
        if (healthcheck.Count == 0) throw Fail("the health check command must not be empty");
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in extra ?? new Dictionary<string, string>()) result[k] = v;
        result["Healthcheck"] = System.Text.Encoding.UTF8.GetString(OciJson.Write(w =>
        {
            w.WriteStartObject();
            OciJson.WriteArray(w, "Test", ["CMD", .. healthcheck]);
            w.WriteEndObject();
        }));
        return result;
    }

    private static RegistryException Fail(string why) => new("REG-IMAGE-001", $"Cannot build the image: {why}.");

    private static IReadOnlyList<string>? MergeEnv(IReadOnlyList<string>? baseEnv, IReadOnlyDictionary<string, string>? add)
    {
        if (add is null) return baseEnv;
        foreach (var key in add.Keys)
            if (key.Length == 0 || key.Contains('=') || key.Any(char.IsControl))
                throw Fail($"environment variable name '{Safe.Printable(key)}' is invalid");
        var result = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var item in baseEnv ?? [])
        {
            var eq = item.IndexOf('=');
            var key = eq < 0 ? item : item[..eq];
            if (!seen.Add(key)) continue;
            result.Add(add.TryGetValue(key, out var v) ? $"{key}={v}" : item);
        }
        foreach (var key in add.Keys.Where(k => !seen.Contains(k)).OrderBy(k => k, StringComparer.Ordinal))
            result.Add($"{key}={add[key]}");
        return result;
    }

    private static IReadOnlyDictionary<string, string>? MergeMap(IReadOnlyDictionary<string, string>? baseMap, IReadOnlyDictionary<string, string>? add)
    {
        if (add is null) return baseMap;
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in baseMap ?? new Dictionary<string, string>()) result[k] = v;
        foreach (var (k, v) in add) result[k] = v;
        return result;
    }

    private static IReadOnlyList<string>? MergePorts(IReadOnlyList<string>? basePorts, IReadOnlyList<string>? add)
    {
        if (add is null) return basePorts;
        foreach (var p in add)
            if (!System.Text.RegularExpressions.Regex.IsMatch(p, @"^[0-9]{1,5}(/(tcp|udp|sctp))?$"))
                throw Fail($"exposed port '{Safe.Printable(p)}' is invalid (expected e.g. 8080/tcp)");
        return (basePorts ?? []).Concat(add).Distinct(StringComparer.Ordinal).OrderBy(p => p, StringComparer.Ordinal).ToArray();
    }
}
