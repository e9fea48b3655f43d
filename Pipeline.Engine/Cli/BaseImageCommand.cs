using Pipeline.Engine.Configuration;
using Pipeline.Engine.Stages;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline base-image</c>: builds a base image from a root file system folder with the engine's
/// own deterministic layer code (no Docker) and pushes it to the internal registry, so the operator
/// can put it, pinned by digest, on a pipeline's list of allowed base images.
/// </summary>
public static class BaseImageCommand
{
    public static async Task<string> RunAsync(EngineSettings settings, string rootfs, string repository, string tag, CancellationToken ct)
    {
        var store = new BlobStore(Path.Combine(settings.WorkDir, "blobs"));
        var image = await ScratchBaseBuilder.BuildAsync(rootfs, store, new ImageSettings
        {
            Created = DateTimeOffset.UnixEpoch,
            CreatedBy = "pipeline base-image",
            Env = new Dictionary<string, string> { ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
        }, DateTimeOffset.UnixEpoch, ct).ConfigureAwait(false);
        using var client = RegistryClients.Create(settings);
        var result = await client.PushImageAsync(repository, tag, image, store, null, ct).ConfigureAwait(false);
        return $"{repository}@{result.ManifestDigest}";
    }
}
