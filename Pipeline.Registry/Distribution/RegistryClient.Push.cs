using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

public sealed partial class RegistryClient
{
    /// <summary>
    /// Pushes an image: every missing blob (config and layers, <see cref="PushImageBlobsAsync"/>), then
    /// the manifest under <paramref name="tag"/> (<see cref="PushImageManifestAsync"/>). Layers not in
    /// <paramref name="store"/> must exist in the target repository or be mountable from <paramref name="baseRepository"/>.
    /// </summary>
    public async Task<PushResult> PushImageAsync(string repository, string tag, BuiltImage image, BlobStore store,
        string? baseRepository = null, CancellationToken cancellationToken = default)
    {
        var blobs = await PushImageBlobsAsync(repository, image, store, baseRepository, cancellationToken).ConfigureAwait(false);
        var digest = await PushImageManifestAsync(repository, tag, image, cancellationToken).ConfigureAwait(false);
        return new PushResult(digest, blobs.Uploaded, blobs.Skipped, blobs.Mounted);
    }

    /// <summary>
    /// The first half of <see cref="PushImageAsync"/>: every blob of the image (layers and config) is
    /// checked and, when missing, uploaded from <paramref name="store"/> or mounted from
    /// <paramref name="baseRepository"/>, a few at a time, the largest first. Nothing refers to them
    /// yet: no manifest, no tag (a registry's garbage collection removes blobs nothing ever refers to).
    /// </summary>
    public async Task<BlobPushCounts> PushImageBlobsAsync(string repository, BuiltImage image, BlobStore store,
        string? baseRepository = null, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(store);
        if (baseRepository is not null) References.ValidateRepository(baseRepository);
        int uploaded = 0, skipped = 0, mounted = 0;
        var blobs = image.AllLayers.Select(l => (Descriptor: l, IsConfig: false)).Append((Descriptor: image.ConfigDescriptor, IsConfig: true))
            .OrderByDescending(b => b.Descriptor.Size).ToList(); // the long uploads start first
        await Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = _options.UploadParallelism, CancellationToken = cancellationToken },
            async (blob, ct) =>
            {
                var outcome = blob.IsConfig
                    ? await PushBlobAsync(repository, blob.Descriptor, () => new MemoryStream(image.ConfigBytes, writable: false), ct).ConfigureAwait(false)
                        ? BlobOutcome.Uploaded : BlobOutcome.Skipped
                    : await PushLayerAsync(repository, blob.Descriptor, store, baseRepository, ct).ConfigureAwait(false);
                switch (outcome)
                {
                    case BlobOutcome.Uploaded: Interlocked.Increment(ref uploaded); break;
                    case BlobOutcome.Skipped: Interlocked.Increment(ref skipped); break;
                    default: Interlocked.Increment(ref mounted); break;
                }
            }).ConfigureAwait(false);
        return new BlobPushCounts(uploaded, skipped, mounted);
    }

    /// <summary>
    /// The second half of <see cref="PushImageAsync"/>: the manifest under <paramref name="tag"/> (or by
    /// digest); every blob it names must be in the repository already.
    /// </summary>
    /// <exception cref="RegistryException">REG-MANIFEST-003 when the registry computed another digest than the built one.</exception>
    public async Task<Digest> PushImageManifestAsync(string repository, string tag, BuiltImage image, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        if (!References.IsTag(tag)) References.ValidateReference(tag);
        ArgumentNullException.ThrowIfNull(image);
        var digest = await PushManifestAsync(repository, tag, image.ManifestBytes, image.ManifestMediaType, cancellationToken).ConfigureAwait(false);
        if (digest != image.ManifestDigest)
            throw new RegistryException("REG-MANIFEST-003", $"Pushed manifest digest {digest} differs from the built {image.ManifestDigest}.");
        return digest;
    }

    private enum BlobOutcome { Uploaded, Skipped, Mounted }

    /// <summary>One layer of <see cref="PushImageAsync"/>: skipped when present, uploaded from the store, or mounted from the base.</summary>
    private async Task<BlobOutcome> PushLayerAsync(string repository, Descriptor layer, BlobStore store, string? baseRepository, CancellationToken ct)
    {
        if (await BlobExistsAsync(repository, layer.Digest, ct).ConfigureAwait(false)) return BlobOutcome.Skipped;
        if (store.Contains(layer.Digest))
        {
            if (layer.Size >= _options.ChunkedUploadThreshold)
            {
                await ChunkedUploadAsync(repository, layer, () => store.OpenRead(layer.Digest), null, ct).ConfigureAwait(false);
            }
            else
            {
                var location = await StartUploadAsync(repository, null, null, ct).ConfigureAwait(false);
                await CompleteUploadAsync(location!, layer, () => store.OpenRead(layer.Digest), ct).ConfigureAwait(false);
            }
            return BlobOutcome.Uploaded;
        }
        if (baseRepository is not null && await MountBlobAsync(repository, layer.Digest, baseRepository, ct).ConfigureAwait(false))
            return BlobOutcome.Mounted;
        throw new RegistryException("REG-PUSH-002",
            $"Layer {layer.Digest} is neither in the registry repository '{repository}', nor in the local blob store" +
            (baseRepository is null ? "" : $", nor mountable from '{baseRepository}'") + ".");
    }
}
