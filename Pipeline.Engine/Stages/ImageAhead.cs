using Pipeline.Registry.Distribution;
using Pipeline.Registry.Layers;

namespace Pipeline.Engine.Stages;

/// <summary>
/// The image work of one delivery, done ahead of its steps so that the intake's stages overlap
/// (issue 12). Once verify has passed, the images are built on this machine while the scan runs:
/// layers and SBOMs go to the engine's local blob store, nothing leaves the engine. Once the scan's
/// verdict is final (<see cref="StartUpload"/> takes the <see cref="Scanned"/> only a passed scan
/// makes), the blobs go up to the internal registry beside the publish to VCS B: independent
/// targets. Nothing refers to those blobs until the push step writes the manifests and the tags,
/// after publish and build are recorded; a delivery that stops at publish leaves blobs no manifest
/// names (the registry's garbage collection removes them; a retry finds them present).
/// </summary>
/// <remarks>
/// The build and push steps take the results (<see cref="BuildsAsync"/>, <see cref="BlobsAsync"/>):
/// work that failed throws there, with its own code, exactly as if the step had done it in place,
/// so the verdict logic, the ledger's order and the attestations are those of the steps run one
/// after another. A delivery that stops earlier cancels the work and waits for it
/// (<see cref="DisposeAsync"/>) before its folder is quarantined or removed.
/// </remarks>
public sealed class ImageAhead : IAsyncDisposable
{
    private readonly CancellationTokenSource _cts;
    private RegistryClient? _client; // made inside the build task: whatever can fail does so in a step
    private readonly Verified _verified;
    private readonly string _storeDir;
    private readonly Task<IReadOnlyList<DeliveryImageBuild>> _build;
    private Task<IReadOnlyDictionary<string, BlobPushCounts>>? _upload;
    private bool _disposed;

    private ImageAhead(DeliveryContext context, Verified verified, CancellationToken ct)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _verified = verified;
        _storeDir = Path.Combine(context.Settings.WorkDir, "blobs");
        var token = _cts.Token;
        // Everything that can fail does so inside the task: the build step throws it, as if it had built in place.
        _build = Task.Run(() =>
        {
            _client = RegistryClients.Create(context.Settings);
            return DeliveryImageBuilder.BuildAsync(BuildStep.Inputs(context, verified), _client, token);
        }, CancellationToken.None);
    }

    /// <summary>Starts building the images of a verified delivery (on this machine only).</summary>
    public static ImageAhead Start(DeliveryContext context, Verified verified, CancellationToken ct) => new(context, verified, ct);

    /// <summary>
    /// The verdict is final: uploads every built image's blobs (no manifest, no tag) as soon as the
    /// build is done. Only a passed scan makes a <see cref="Scanned"/>.
    /// </summary>
    /// <exception cref="PipelineException">ENG-STAGE-ORDER when the verdict is about another delivery than the build.</exception>
    public void StartUpload(Scanned scanned)
    {
        if (!ReferenceEquals(scanned.Verified, _verified))
            throw new PipelineException("ENG-STAGE-ORDER", "the scan verdict is not about the delivery built ahead");
        if (_upload is not null) return;
        var token = _cts.Token;
        _upload = Task.Run(async () =>
        {
            var builds = await _build.ConfigureAwait(false);
            var store = new BlobStore(_storeDir);
            var counts = new Dictionary<string, BlobPushCounts>(StringComparer.Ordinal);
            foreach (var build in builds)
            foreach (var p in build.Platforms)
                counts[Key(build.Repository, p.Image)] = await _client!.PushImageBlobsAsync(build.Repository, p.Image, store, build.BaseRepository, token).ConfigureAwait(false);
            return (IReadOnlyDictionary<string, BlobPushCounts>)counts;
        }, CancellationToken.None);
    }

    /// <summary>The images built ahead for <paramref name="verified"/> (the build's exception, if it failed).</summary>
    public Task<IReadOnlyList<DeliveryImageBuild>> BuildsAsync(Verified verified, CancellationToken ct) =>
        ReferenceEquals(verified, _verified)
            ? _build.WaitAsync(ct)
            : throw new PipelineException("ENG-STAGE-ORDER", "the build step's delivery is not the one built ahead");

    /// <summary>What the upload ahead did with the blobs of <paramref name="image"/> (its exception, if it failed).</summary>
    public async Task<BlobPushCounts> BlobsAsync(BuiltDeliveryImage image, CancellationToken ct)
    {
        var upload = _upload ?? throw new PipelineException("ENG-STAGE-ORDER", "push needs the scan's verdict before any blob is uploaded");
        var counts = await upload.WaitAsync(ct).ConfigureAwait(false);
        return counts.TryGetValue(Key(image.Repository, image.Image), out var c)
            ? c
            : throw new PipelineException("ENG-STAGE-ORDER", $"image {image.Repository}@{image.Image.ManifestDigest} was not built ahead");
    }

    private static string Key(string repository, Pipeline.Registry.Images.BuiltImage image) => repository + "@" + image.ManifestDigest;

    /// <summary>Cancels what is still running and waits for it (its outcome no longer matters).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _cts.CancelAsync().ConfigureAwait(false);
        await AheadWork.DrainAsync([_build, _upload]).ConfigureAwait(false);

        _client?.Dispose();
        _cts.Dispose();
    }
}
