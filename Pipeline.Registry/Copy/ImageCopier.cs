using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Copy;

/// <summary>
/// Copies an image (manifest or index, with everything it names and its referrers) between
/// repositories by digest, and moves tags onto copied images. Knows nothing of deliveries or stages.
/// </summary>
public static class ImageCopier
{
    /// <summary>
    /// Copies the manifest or index <paramref name="digest"/> (with every child manifest, config and layer
    /// blob, and, recursively, its referrers) from <paramref name="source"/>/<paramref name="sourceRepository"/>
    /// to <paramref name="target"/>/<paramref name="targetRepository"/>, by digest. Within one registry blobs are
    /// cross-repository mounted (0 bytes uploaded); between registries they are streamed (GET → PATCH, never
    /// the whole blob in memory) and committed only when every byte matched its digest and size; blobs the
    /// target already has are skipped. Manifests are pushed by digest, never by tag, children before parents,
    /// byte for byte. The whole source graph is read and checked before the first write. No tag is moved
    /// (except the <c>sha256-&lt;hex&gt;</c> referrers fallback index on a target without the referrers API):
    /// after a failure a retry skips what is already there and finishes.
    /// </summary>
    public static async Task<ImageCopyResult> CopyAsync(RegistryClient source, string sourceRepository, Digest digest,
        RegistryClient target, string targetRepository, ImageCopyOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(digest);
        References.ValidateRepository(sourceRepository);
        References.ValidateRepository(targetRepository);
        options ??= new ImageCopyOptions();
        options.Validate();
        var progress = options.Progress;

        var plan = await CopyPlan.ReadAsync(source, sourceRepository, digest, options.IncludeReferrers, ct).ConfigureAwait(false);
        var blobs = plan.Blobs;
        var total = blobs.Sum(b => b.Size);
        progress?.Report(new ImageCopyProgress("manifests", null, 0, total));

        var mount = target.IsSameRegistry(source) && sourceRepository != targetRepository;
        var sameRepository = target.IsSameRegistry(source) && sourceRepository == targetRepository;
        int mounted = 0, uploaded = 0, skipped = 0;
        long bytesUploaded = 0, done = 0;
        await Parallel.ForEachAsync(blobs, new ParallelOptions { MaxDegreeOfParallelism = options.Parallelism, CancellationToken = ct }, async (blob, token) =>
        {
            if (sameRepository || await target.BlobExistsAsync(targetRepository, blob.Digest, token).ConfigureAwait(false))
            {
                Interlocked.Increment(ref skipped);
            }
            else if (mount && await target.MountBlobAsync(targetRepository, blob.Digest, sourceRepository, token).ConfigureAwait(false))
            {
                Interlocked.Increment(ref mounted);
            }
            else
            {
                var sent = await target.CopyBlobFromAsync(source, sourceRepository, targetRepository, blob, token).ConfigureAwait(false);
                Interlocked.Add(ref bytesUploaded, sent);
                Interlocked.Increment(ref uploaded);
            }
            progress?.Report(new ImageCopyProgress("blob", blob.Digest, Interlocked.Add(ref done, blob.Size), total));
        }).ConfigureAwait(false);

        progress?.Report(new ImageCopyProgress("push", null, total, total));
        var referrers = new List<Digest>();
        foreach (var node in plan.Nodes)
        {
            if (node.Subject is { } subject)
            {
                await target.PushReferrerAsync(targetRepository, node.Bytes, node.MediaType, node.ReferrerDescriptor!, subject, ct).ConfigureAwait(false);
                referrers.Add(node.Digest);
            }
            else
            {
                var pushed = await target.PushManifestAsync(targetRepository, node.Digest.ToString(), node.Bytes, node.MediaType, ct).ConfigureAwait(false);
                if (pushed != node.Digest)
                    throw new RegistryException("REG-MANIFEST-003", $"Pushed manifest {node.Digest} came back as {pushed}.");
            }
        }
        var root = plan.Nodes.Single(n => n.Digest == digest);
        progress?.Report(new ImageCopyProgress("done", null, total, total));
        var stored = plan.Nodes.Select(n => new StoredObject(n.Digest, n.Bytes.LongLength))
            .Concat(blobs.Select(b => new StoredObject(b.Digest, b.Size))).DistinctBy(o => o.Digest).ToList();
        return new ImageCopyResult(digest, root.MediaType, plan.Nodes.Count, mounted, uploaded, skipped, bytesUploaded, referrers) { Stored = stored };
    }

    /// <summary>
    /// Moves (creates or overwrites) <paramref name="tag"/> in <paramref name="repository"/> to point at the
    /// already copied manifest or index <paramref name="digest"/>: reads it by digest (its bytes must hash to
    /// it; <c>REG-COPY-005</c> when it is not there) and pushes the same bytes under the tag.
    /// </summary>
    public static async Task TagAsync(RegistryClient target, string repository, Digest digest, string tag, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(digest);
        References.ValidateRepository(repository);
        if (!References.IsTag(tag))
            throw new RegistryException("REG-COPY-006", $"'{Safe.Printable(tag)}' is not a valid tag.");
        ManifestResponse manifest;
        try
        {
            manifest = await target.GetManifestAsync(repository, digest.ToString(), ct).ConfigureAwait(false);
        }
        catch (RegistryException ex) when (ex.StatusCode == 404)
        {
            throw new RegistryException("REG-COPY-005", $"Cannot tag '{repository}:{tag}': {digest} is not in '{repository}'; copy it first.", statusCode: 404, inner: ex);
        }
        var pushed = await target.PushManifestAsync(repository, tag, manifest.Bytes, manifest.MediaType, ct).ConfigureAwait(false);
        if (pushed != digest)
            throw new RegistryException("REG-MANIFEST-003", $"Tag '{tag}' was written as {pushed}, expected {digest}.");
    }
}
