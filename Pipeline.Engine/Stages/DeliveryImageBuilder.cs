using System.Globalization;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Sbom;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Stages;

/// <summary>What the build of one delivery needs; everything that goes into the digests is here.</summary>
public sealed record DeliveryBuildInputs(
    string TreeDir,
    DeliveryManifest Manifest,
    string PipelineName,
    string Supplier,
    string RepositoryPrefix,
    string TagName,
    string CommitId,
    DateTimeOffset TagTime,
    string SourceUrl,
    string StoreDir);

/// <summary>One platform's image of a delivery image, with its SBOM.</summary>
public sealed record PlatformImage(string Platform, BuiltImage Image, byte[] Sbom, Descriptor SbomDescriptor);

/// <summary>
/// A built delivery image: one <see cref="PlatformImage"/> per platform, and the index over them when
/// there is more than one. <see cref="Digest"/> is what the tag will point to.
/// </summary>
public sealed record DeliveryImageBuild(
    string Name,
    string Repository,
    string Base,
    string BaseRepository,
    IReadOnlyList<PlatformImage> Platforms,
    ImageIndex? Index,
    byte[]? IndexBytes)
{
    public Digest Digest => IndexBytes is null ? Platforms[0].Image.ManifestDigest : Digest.Compute(IndexBytes);
}

/// <summary>The build itself, shared by the build stage and <c>pipeline image build</c> (auditors' rebuild).</summary>
public static class DeliveryImageBuilder
{
    public static async Task<IReadOnlyList<DeliveryImageBuild>> BuildAsync(DeliveryBuildInputs inputs, RegistryClient client, CancellationToken ct)
    {
        if (!References.IsTag(inputs.TagName))
            throw new PipelineException("BUILD-TAG-NAME", $"tag '{inputs.TagName}' cannot be used as an image tag (letters, digits, '.', '_', '-'; at most 128)");
        var store = new BlobStore(inputs.StoreDir);
        var created = inputs.TagTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var result = new List<DeliveryImageBuild>();
        foreach (var spec in inputs.Manifest.Images)
        {
            var (baseRepo, baseDigest) = BuildStep.SplitReference(spec.Base);
            var repository = inputs.RepositoryPrefix + "/" + spec.Name;
            var provenance = ProvenanceAnnotations(inputs, created, client.Endpoint.Authority + "/" + baseRepo, baseDigest);
            var platforms = new List<PlatformImage>();
            foreach (var platformText in spec.Platforms)
            {
                var platform = ParsePlatform(platformText);
                var baseImage = await PullBaseAsync(client, baseRepo, baseDigest, platform, ct).ConfigureAwait(false);
                var layers = new List<Layer>();
                var sbomFiles = new List<SbomFile>();
                foreach (var map in spec.Files)
                {
                    var entries = Entries(inputs.TreeDir, map, platformText);
                    layers.Add(await new LayerBuilder(store).BuildAsync(entries, inputs.TagTime, cancellationToken: ct).ConfigureAwait(false));
                    sbomFiles.AddRange(entries.Where(e => e.SourcePath is not null).Select(e => new SbomFile(e.TargetPath, e.SourcePath!)));
                }

                var labels = new SortedDictionary<string, string>(spec.Labels.ToDictionary(), StringComparer.Ordinal);
                foreach (var (k, v) in provenance) labels[k] = v;
                var image = ImageBuilder.Build(baseImage, layers, new ImageSettings
                {
                    Entrypoint = spec.Entrypoint.Count > 0 ? spec.Entrypoint : null,
                    Cmd = spec.Cmd.Count > 0 ? spec.Cmd : null,
                    Env = spec.Env,
                    WorkingDir = spec.WorkingDir,
                    User = spec.User,
                    ExposedPorts = spec.Ports,
                    Labels = labels,
                    Healthcheck = spec.Healthcheck.Count > 0 ? spec.Healthcheck : null,
                    Created = inputs.TagTime,
                    CreatedBy = $"pipeline build: {inputs.PipelineName} {inputs.TagName} ({spec.Name})",
                    HistoryComment = "delivered files from delivery.yaml",
                    ManifestAnnotations = provenance,
                });
                var sbom = SpdxSbom.Build(new SbomSubject(repository, inputs.TagName, inputs.TagTime,
                    $"https://spdx.pipeline.invalid/{repository}/{inputs.TagName}/{platformText.Replace('/', '-')}/{image.ConfigDigest.Hex[..16]}",
                    "pipeline"), sbomFiles, ct);
                platforms.Add(new PlatformImage(platformText, image, sbom, new Descriptor(SpdxSbom.MediaType, Digest.Compute(sbom), sbom.LongLength)));
            }

            ImageIndex? index = null;
            byte[]? indexBytes = null;
            if (platforms.Count > 1)
            {
                index = new ImageIndex(platforms.Select(p => new Descriptor(MediaTypes.OciManifest, p.Image.ManifestDigest, p.Image.ManifestBytes.LongLength,
                    Platform: ParsePlatform(p.Platform))).ToArray(), Annotations: provenance);
                indexBytes = index.ToJsonBytes();
            }
            result.Add(new DeliveryImageBuild(spec.Name, repository, spec.Base, baseRepo, platforms, index, indexBytes));
        }
        return result;
    }

    /// <summary>
    /// The OCI pre-defined annotations every manifest and index carries, and the config repeats as labels
    /// (they override a delivery's own labels): source, revision, version, created (the tag's time),
    /// vendor (the supplier), base.name (the base repository with the registry host) and base.digest
    /// (the pinned digest from the allow-list; an index digest for a multi-platform base).
    /// </summary>
    internal static SortedDictionary<string, string> ProvenanceAnnotations(DeliveryBuildInputs inputs, string created, string baseName, string baseDigest) =>
        new(StringComparer.Ordinal)
        {
            ["org.opencontainers.image.source"] = inputs.SourceUrl,
            ["org.opencontainers.image.revision"] = inputs.CommitId,
            ["org.opencontainers.image.version"] = inputs.TagName,
            ["org.opencontainers.image.created"] = created,
            ["org.opencontainers.image.vendor"] = inputs.Supplier,
            ["org.opencontainers.image.base.name"] = baseName,
            ["org.opencontainers.image.base.digest"] = baseDigest,
        };

    internal static Platform ParsePlatform(string text)
    {
        var parts = text.Split('/');
        return new Platform(parts[1], parts[0], parts.Length > 2 ? parts[2] : null);
    }

    private static async Task<BaseImage> PullBaseAsync(RegistryClient client, string repository, string digest, Platform platform, CancellationToken ct)
    {
        var response = await client.GetManifestAsync(repository, digest, ct).ConfigureAwait(false);
        var name = $"{platform.Os}/{platform.Architecture}{(platform.Variant is null ? "" : "/" + platform.Variant)}";
        if (MediaTypes.IsIndex(response.MediaType))
        {
            var index = ImageIndex.Parse(response.Bytes, response.MediaType);
            var pick = index.Manifests.FirstOrDefault(m => m.Platform is { } p && p.Os == platform.Os && p.Architecture == platform.Architecture
                                                          && (platform.Variant is null || p.Variant == platform.Variant))
                       ?? throw new PipelineException("BUILD-BASE-PLATFORM", $"base image {repository}@{digest} has no {name} image");
            response = await client.GetManifestAsync(repository, pick.Digest.ToString(), ct).ConfigureAwait(false);
        }

        var manifest = ImageManifest.Parse(response.Bytes, response.MediaType);
        using var config = new MemoryStream();
        await client.GetBlobAsync(repository, manifest.Config.Digest, config, manifest.Config.Size, cancellationToken: ct).ConfigureAwait(false);
        var parsed = ImageConfig.Parse(config.ToArray());
        if (parsed.Os != platform.Os || parsed.Architecture != platform.Architecture)
            throw new PipelineException("BUILD-BASE-PLATFORM", $"base image {repository}@{digest} is {parsed.Os}/{parsed.Architecture}, but the delivery builds {name}; use a multi-platform base (an index) or a base of that platform");
        return new BaseImage(manifest, parsed);
    }

    /// <summary>Layer entries for one file mapping on one platform; owned by root, modes as declared.</summary>
    internal static List<LayerEntry> Entries(string treeDir, FileMapping map, string platform)
    {
        var entries = new List<LayerEntry>();
        var source = Path.Combine(treeDir, map.FromFor(platform));
        var target = map.To.TrimEnd('/');
        if (File.Exists(source))
        {
            entries.Add(new LayerEntry(source, map.To.EndsWith('/') ? $"{target}/{Path.GetFileName(source)}" : target, map.FileMode));
            return entries;
        }

        if (target.Length > 0) entries.Add(new LayerEntry(null, target, map.DirMode));
        // A link is passed on as a file entry (the layer builder rejects it), never followed.
        foreach (var e in Pipeline.Checkup.Checksums.FileTree.Enumerate(source))
        {
            var rel = Path.GetRelativePath(source, e.FullName).Replace('\\', '/');
            var isDir = e is DirectoryInfo && e.LinkTarget is null;
            entries.Add(new LayerEntry(isDir ? null : e.FullName, $"{target}/{rel}", isDir ? map.DirMode : map.FileMode));
        }

        return entries;
    }
}

/// <summary>The engine's registry client for the configured internal registry.</summary>
internal static class RegistryClients
{
    public static RegistryClient Create(Configuration.EngineSettings settings) =>
        new(new RegistryEndpoint(settings.Registry.Url,
                settings.Registry.CredentialsFile is { } f ? RegistryCredentials.FromFile(f) : null),
            new RegistryClientOptions { CaBundleFile = settings.Registry.CaBundleFile, MaxAttempts = settings.Registry.MaxAttempts });
}
