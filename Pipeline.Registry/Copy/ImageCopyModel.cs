using Pipeline.Registry.Model;

namespace Pipeline.Registry.Copy;

/// <summary>How <see cref="ImageCopier.CopyAsync"/> copies.</summary>
public sealed record ImageCopyOptions
{
    /// <summary>Copy the referrers (SBOM, attestations) of every copied manifest, recursively: the OCI referrers API, else the <c>sha256-&lt;hex&gt;</c> tag fallback.</summary>
    public bool IncludeReferrers { get; init; } = true;

    /// <summary>Receives progress reports, synchronously on the copying thread (keep it cheap).</summary>
    public IProgress<ImageCopyProgress>? Progress { get; init; }

    /// <summary>Blobs in flight at once (1..32).</summary>
    public int Parallelism { get; init; } = 4;

    internal void Validate()
    {
        if (Parallelism is < 1 or > 32)
            throw new RegistryException("REG-COPY-006", $"ImageCopyOptions.Parallelism must be between 1 and 32, got {Parallelism}.");
    }
}

/// <summary>
/// A progress report. <paramref name="Phase"/> is <c>manifests</c> (reading the source graph),
/// <c>blob</c> (a blob was skipped, mounted or uploaded: <paramref name="Blob"/>), <c>push</c>
/// (manifests being written) or <c>done</c>. Bytes count blob bytes handled of all blob bytes.
/// </summary>
public sealed record ImageCopyProgress(string Phase, Digest? Blob, long BytesDone, long BytesTotal);

/// <summary>What <see cref="ImageCopier.CopyAsync"/> did.</summary>
/// <param name="Digest">The copied root manifest or index (the same digest in source and target).</param>
/// <param name="MediaType">Its media type.</param>
/// <param name="Manifests">Manifests and indexes pushed (the root, its children and the referrers' manifests).</param>
/// <param name="BlobsMounted">Blobs cross-repository mounted (same registry).</param>
/// <param name="BlobsUploaded">Blobs streamed from the source and uploaded.</param>
/// <param name="BlobsSkipped">Blobs the target repository already had.</param>
/// <param name="BytesUploaded">Blob bytes sent to the target.</param>
/// <param name="Referrers">Digests of the referrer manifests copied (SBOMs, attestations, recursively).</param>
public sealed record ImageCopyResult(Digest Digest, string MediaType, int Manifests, int BlobsMounted, int BlobsUploaded, int BlobsSkipped,
    long BytesUploaded, IReadOnlyList<Digest> Referrers)
{
    /// <summary>
    /// Everything the image occupies in the target, each once: every manifest and index (the root, its children,
    /// the referrers') and every distinct blob, by digest and size, whether it was uploaded, mounted or already there.
    /// </summary>
    public IReadOnlyList<StoredObject> Stored { get; init; } = [];
}

/// <summary>One content-addressed object (manifest or blob) and its size in bytes.</summary>
public sealed record StoredObject(Digest Digest, long Size);
