using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Copy;

/// <summary>One manifest or index to push: its exact bytes, and for a referrer the subject it points at.</summary>
internal sealed record CopyNode(Digest Digest, string MediaType, byte[] Bytes, Descriptor? ReferrerDescriptor, Digest? Subject);

/// <summary>
/// The source side of a copy, read before anything is written: every manifest and index reachable
/// from the root (children first, then each manifest's referrers after it, recursively) with their
/// exact bytes, and the distinct blobs they name. Every manifest is fetched by digest (the client
/// checks the bytes hash to it) and its size is checked against the descriptor that named it.
/// </summary>
internal sealed class CopyPlan
{
    private readonly RegistryClient _source;
    private readonly string _repository;
    private readonly HashSet<Digest> _seen = [];
    private readonly List<CopyNode> _nodes = [];
    private readonly Dictionary<Digest, Descriptor> _blobs = [];

    private CopyPlan(RegistryClient source, string repository)
    {
        _source = source;
        _repository = repository;
    }

    /// <summary>Manifests in push order: children before parents, subjects before their referrers.</summary>
    public IReadOnlyList<CopyNode> Nodes => _nodes;

    /// <summary>Distinct blobs (configs and layers), largest first so the long transfers start early.</summary>
    public IReadOnlyList<Descriptor> Blobs => _blobs.Values.OrderByDescending(b => b.Size).ToArray();

    public static async Task<CopyPlan> ReadAsync(RegistryClient source, string repository, Digest root, bool referrers, CancellationToken ct)
    {
        var plan = new CopyPlan(source, repository);
        await plan.VisitAsync(root, null, null, null, ct).ConfigureAwait(false);
        if (referrers)
        {
            // The list grows while we walk it: referrers of referrers (a signature on an SBOM) come along.
            for (var i = 0; i < plan._nodes.Count; i++)
            {
                var subject = plan._nodes[i].Digest;
                var found = await source.ListReferrersAsync(repository, subject, null, ct).ConfigureAwait(false);
                foreach (var r in found) await plan.VisitAsync(r.Digest, r, r, subject, ct).ConfigureAwait(false);
            }
        }
        return plan;
    }

    private async Task VisitAsync(Digest digest, Descriptor? named, Descriptor? referrer, Digest? subject, CancellationToken ct)
    {
        if (!_seen.Add(digest)) return;
        if (named is not null && !IsCopyable(named.MediaType))
            throw Unsupported(digest, named.MediaType);
        ManifestResponse manifest;
        try
        {
            manifest = await _source.GetManifestAsync(_repository, digest.ToString(), ct).ConfigureAwait(false);
        }
        catch (RegistryException ex) when (ex.StatusCode == 404)
        {
            var what = named is null ? "The manifest" : referrer is not null ? $"Referrer manifest of {subject}" : "Child manifest";
            throw new RegistryException("REG-COPY-002", $"{what} {digest} is not in the source repository '{_repository}'; nothing was copied.", statusCode: 404, inner: ex);
        }
        if (!IsCopyable(manifest.MediaType)) throw Unsupported(digest, manifest.MediaType);
        if (named is not null && named.Size != manifest.Bytes.LongLength)
            throw new RegistryException("REG-COPY-001", $"Manifest {digest} has {manifest.Bytes.LongLength} bytes, but its descriptor says {named.Size}; refusing to copy it.");

        Descriptor? declaredSubject;
        if (MediaTypes.IsIndex(manifest.MediaType))
        {
            var index = ImageIndex.Parse(manifest.Bytes, manifest.MediaType);
            declaredSubject = index.Subject;
            foreach (var child in index.Manifests) await VisitAsync(child.Digest, child, null, null, ct).ConfigureAwait(false);
        }
        else
        {
            var image = ImageManifest.Parse(manifest.Bytes, manifest.MediaType);
            declaredSubject = image.Subject;
            foreach (var blob in image.Layers.Prepend(image.Config)) AddBlob(blob);
        }
        if (subject is not null && declaredSubject?.Digest != subject)
            throw new RegistryException("REG-COPY-004",
                $"The source lists {digest} as a referrer of {subject}, but its subject is {declaredSubject?.Digest.ToString() ?? "missing"}; refusing to copy it.");
        _nodes.Add(new CopyNode(digest, manifest.MediaType, manifest.Bytes, referrer, subject));
    }

    private void AddBlob(Descriptor blob)
    {
        if (_blobs.TryGetValue(blob.Digest, out var known))
        {
            if (known.Size != blob.Size)
                throw new RegistryException("REG-COPY-001", $"Blob {blob.Digest} is named with sizes {known.Size} and {blob.Size}; refusing to copy it.");
            return;
        }
        _blobs.Add(blob.Digest, blob);
    }

    private static bool IsCopyable(string mediaType) => MediaTypes.IsManifest(mediaType) || MediaTypes.IsIndex(mediaType);

    private static RegistryException Unsupported(Digest digest, string mediaType) =>
        new("REG-COPY-003", $"Manifest {digest} has the media type '{Safe.Printable(mediaType)}', which cannot be copied (OCI or Docker v2 manifests and indexes only).");
}
