using System.Globalization;
using Pipeline.Engine.Definitions;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Builds the images <c>delivery.yaml</c> asks for, without a Docker daemon: the approved base (by
/// digest, from the internal registry) plus one deterministic layer of delivered files (root-owned,
/// modes as declared, mtime = the tag's time) and a config with OCI labels for source and revision.
/// Same delivery, same digest.
/// </summary>
public sealed class BuildStage : IStage
{
    public string Name => "build";

    public async Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        var tag = context.Annotated ?? throw new PipelineException("ENG-STAGE-ORDER", "build needs the fetch stage first");
        var definition = context.Definition;
        var manifest = context.Delivery ?? DeliveryManifestParser.Load(context.TreeDir, definition.Images.AllowedBaseImages);
        if (!References.IsTag(tag.Name))
            throw new PipelineException("BUILD-TAG-NAME", $"tag '{tag.Name}' cannot be used as an image tag (letters, digits, '.', '_', '-'; at most 128)");

        var storeDir = Path.Combine(context.Settings.WorkDir, "blobs");
        var store = new BlobStore(storeDir);
        using var client = RegistryClients.Create(context.Settings);
        var evidence = StageOutcome.NewEvidence();
        var tagTime = context.TagTime;
        foreach (var spec in manifest.Images)
        {
            var (baseRepo, baseDigest) = SplitReference(spec.Base);
            var baseImage = await PullBaseAsync(client, baseRepo, baseDigest, ct).ConfigureAwait(false);
            var entries = Entries(context.TreeDir, spec);
            var layer = await new LayerBuilder(store).BuildAsync(entries, tagTime, cancellationToken: ct).ConfigureAwait(false);

            var labels = new SortedDictionary<string, string>(spec.Labels.ToDictionary(), StringComparer.Ordinal)
            {
                ["org.opencontainers.image.source"] = PublishStage.InternalRepositoryUrl(context).ToString(),
                ["org.opencontainers.image.revision"] = tag.CommitId,
                ["org.opencontainers.image.version"] = tag.Name,
                ["org.opencontainers.image.created"] = tagTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                ["org.opencontainers.image.vendor"] = definition.Supplier,
                ["org.opencontainers.image.base.digest"] = baseDigest,
                ["org.opencontainers.image.base.name"] = baseRepo,
            };
            var image = ImageBuilder.Build(baseImage, [layer], new ImageSettings
            {
                Entrypoint = spec.Entrypoint.Count > 0 ? spec.Entrypoint : null,
                Cmd = spec.Cmd.Count > 0 ? spec.Cmd : null,
                Env = spec.Env,
                WorkingDir = spec.WorkingDir,
                User = spec.User,
                ExposedPorts = spec.Ports,
                Labels = labels,
                Created = tagTime,
                CreatedBy = $"pipeline build: {definition.Name} {tag.Name} ({spec.Name})",
                HistoryComment = "delivered files from delivery.yaml",
                ManifestAnnotations = new SortedDictionary<string, string>(StringComparer.Ordinal)
                {
                    ["org.opencontainers.image.revision"] = tag.CommitId,
                    ["org.opencontainers.image.version"] = tag.Name,
                    ["org.opencontainers.image.created"] = labels["org.opencontainers.image.created"],
                },
            });
            var repository = definition.Images.RepositoryPrefix + "/" + spec.Name;
            context.Images.Add(new BuiltDeliveryImage(spec.Name, repository, tag.Name, image, storeDir) { BaseRepository = baseRepo });
            evidence[$"{spec.Name}.base"] = spec.Base;
            evidence[$"{spec.Name}.layer"] = layer.Descriptor.Digest.ToString();
            evidence[$"{spec.Name}.diffId"] = layer.DiffId.ToString();
            evidence[$"{spec.Name}.image"] = image.ManifestDigest.ToString();
        }

        var output = context.Images.Count == 1
            ? context.Images[0].Image.ManifestDigest.ToString()
            : Digest.Compute(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", context.Images.Select(i => $"{i.Name} {i.Image.ManifestDigest}")))).ToString();
        return new StageOutcome(context.Checksums?.ManifestDigest, output, evidence);
    }

    internal static (string Repository, string Digest) SplitReference(string reference)
    {
        var at = reference.IndexOf('@');
        return (reference[..at], reference[(at + 1)..]);
    }

    private static async Task<BaseImage> PullBaseAsync(RegistryClient client, string repository, string digest, CancellationToken ct)
    {
        var response = await client.GetManifestAsync(repository, digest, ct).ConfigureAwait(false);
        if (MediaTypes.IsIndex(response.MediaType))
        {
            var index = ImageIndex.Parse(response.Bytes, response.MediaType);
            var pick = index.Manifests.FirstOrDefault(m => m.Platform is { Os: "linux", Architecture: "amd64" })
                       ?? throw new PipelineException("BUILD-BASE-PLATFORM", $"base image {repository}@{digest} has no linux/amd64 image");
            response = await client.GetManifestAsync(repository, pick.Digest.ToString(), ct).ConfigureAwait(false);
        }

        var manifest = ImageManifest.Parse(response.Bytes, response.MediaType);
        using var config = new MemoryStream();
        await client.GetBlobAsync(repository, manifest.Config.Digest, config, manifest.Config.Size, cancellationToken: ct).ConfigureAwait(false);
        return new BaseImage(manifest, ImageConfig.Parse(config.ToArray()));
    }

    /// <summary>Layer entries for every file and folder the image's mappings name; owned by root, modes as declared.</summary>
    internal static List<LayerEntry> Entries(string treeDir, ImageSpec spec)
    {
        const int dirMode = 0b111_101_101;
        var entries = new List<LayerEntry>();
        foreach (var map in spec.Files)
        {
            var source = Path.Combine(treeDir, map.From);
            var target = map.To.TrimEnd('/');
            if (File.Exists(source))
            {
                entries.Add(new LayerEntry(source, map.To.EndsWith('/') ? $"{target}/{Path.GetFileName(source)}" : target, map.FileMode));
                continue;
            }

            entries.Add(new LayerEntry(null, target.Length == 0 ? "/" : target, dirMode));
            foreach (var path in Directory.EnumerateFileSystemEntries(source, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                var rel = Path.GetRelativePath(source, path).Replace('\\', '/');
                var isDir = Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null;
                entries.Add(new LayerEntry(isDir ? null : path, $"{target}/{rel}", isDir ? dirMode : map.FileMode));
            }
        }

        return entries;
    }
}

/// <summary>The engine's registry client for the configured internal registry.</summary>
internal static class RegistryClients
{
    public static RegistryClient Create(Configuration.EngineSettings settings) =>
        new(new RegistryEndpoint(settings.Registry.Url,
            settings.Registry.CredentialsFile is { } f ? RegistryCredentials.FromFile(f) : null));
}
