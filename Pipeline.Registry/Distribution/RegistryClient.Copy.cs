using System.Net;
using System.Net.Http.Headers;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

/// <summary>Registry-to-registry pieces used by <see cref="Copy.ImageCopier"/>.</summary>
public sealed partial class RegistryClient
{
    /// <summary>True when <paramref name="other"/> talks to the same registry (scheme and authority), so blobs can be mounted.</summary>
    public bool IsSameRegistry(RegistryClient other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return other._endpoint.BaseUri.Scheme == _endpoint.BaseUri.Scheme
            && other._endpoint.BaseUri.Authority.Equals(_endpoint.BaseUri.Authority, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Streams one blob from <paramref name="source"/> into this registry: <c>GET</c> on the source,
    /// its body piped through a hash into one <c>PATCH</c> of a fresh upload session, and the session
    /// committed (<c>PUT ?digest=</c>) only when every byte matched the descriptor's size and digest.
    /// Nothing is buffered beyond the HTTP copy buffer. A transient failure restarts the blob (new GET,
    /// new session) up to <see cref="RegistryClientOptions.MaxAttempts"/> times; a mismatch is
    /// <c>REG-COPY-001</c> and never retried; a blob missing in the source is <c>REG-COPY-002</c>.
    /// Returns the bytes sent.
    /// </summary>
    internal async Task<long> CopyBlobFromAsync(RegistryClient source, string sourceRepository, string repository, Descriptor blob,
        Action<long>? sent, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await CopyBlobOnceAsync(source, sourceRepository, repository, blob, sent, ct).ConfigureAwait(false);
            }
            catch (RegistryException ex) when (ex.IsTransient && attempt < _options.MaxAttempts)
            {
                await DelayAsync(attempt, null, ct).ConfigureAwait(false);
            }
        }
    }

    private async Task<long> CopyBlobOnceAsync(RegistryClient source, string sourceRepository, string repository, Descriptor blob,
        Action<long>? sent, CancellationToken ct)
    {
        using var download = await source.SendAsync("REG-BLOB-007", "Blob download", () => new HttpRequestMessage(HttpMethod.Get, source.Url($"v2/{sourceRepository}/blobs/{blob.Digest}")),
            ct, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        if (download.StatusCode == HttpStatusCode.NotFound)
            throw new RegistryException("REG-COPY-002", $"Blob {blob.Digest} is not in the source repository '{sourceRepository}'; the image there is incomplete.", statusCode: 404);
        await EnsureSuccessAsync(download, "REG-BLOB-007", "Blob download", ct).ConfigureAwait(false);
        if (download.Content.Headers.ContentLength is { } announced && announced != blob.Size)
            throw new RegistryException("REG-COPY-001", $"The source announces blob {blob.Digest} as {announced} bytes, but the manifest says {blob.Size}; refusing to copy it.");

        var location = (await StartUploadAsync(repository, null, null, ct).ConfigureAwait(false))!;
        await using var body = await download.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        // maxBytes one past the size: a longer body is detected below instead of inside the HTTP send.
        using var hashing = new HashingStream(new CountingReadStream(body, sent), blob.Digest.CreateHash(), leaveOpen: true, maxBytes: blob.Size + 1);
        var sessionOpen = true;
        try
        {
            HttpResponseMessage patch;
            try
            {
                patch = await SendAsync("REG-BLOB-005", "Blob upload", () =>
                {
                    var content = new StreamContent(hashing, 256 * 1024);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.ContentLength = blob.Size;
                    return new HttpRequestMessage(HttpMethod.Patch, location) { Content = content };
                }, ct, retry: false).ConfigureAwait(false);
            }
            catch (RegistryException ex) when (hashing.Count > blob.Size || ex.Code == "REG-BLOB-003")
            {
                throw new RegistryException("REG-COPY-001", $"The source sent more than the {blob.Size} bytes of blob {blob.Digest}; refusing it. Nothing was committed.", inner: ex);
            }
            catch (RegistryException ex) when (ex.Code == "REG-BLOB-009")
            {
                // The body we forward is the source registry's response: its failure is a network failure there.
                throw new RegistryException("REG-COPY-007", $"Reading blob {blob.Digest} from the source registry failed after {hashing.Count} bytes; nothing was committed, the copy can be retried.",
                    isTransient: true, inner: ex);
            }
            using (patch)
            {
                await EnsureSuccessAsync(patch, "REG-BLOB-005", "Blob upload", ct).ConfigureAwait(false);
                location = NextLocation(patch, location);
            }
            var actual = Digest.FromHash(blob.Digest.Algorithm, hashing.GetHash());
            if (hashing.Count != blob.Size || actual != blob.Digest)
                throw new RegistryException("REG-COPY-001",
                    $"Blob {blob.Digest} from the source hashed to {actual} ({hashing.Count} of {blob.Size} bytes): the source registry serves corrupt content. Nothing was committed.");

            var builder = new UriBuilder(location);
            var digestParam = "digest=" + Uri.EscapeDataString(blob.Digest.ToString());
            builder.Query = builder.Query.Length > 1 ? builder.Query[1..] + "&" + digestParam : digestParam;
            using var commit = await SendAsync("REG-BLOB-005", "Blob upload commit", () => new HttpRequestMessage(HttpMethod.Put, builder.Uri)
            {
                Content = new ByteArrayContent([]),
            }, ct).ConfigureAwait(false);
            await EnsureSuccessAsync(commit, "REG-BLOB-005", "Blob upload commit", ct).ConfigureAwait(false);
            sessionOpen = false;
            var claimed = HeaderDigest(commit);
            if (claimed is not null && claimed != blob.Digest)
                throw new RegistryException("REG-BLOB-006", $"The registry stored the blob as {claimed}, expected {blob.Digest}.", statusCode: (int)commit.StatusCode);
            if (commit.StatusCode != HttpStatusCode.Created)
                throw new RegistryException("REG-BLOB-006", $"Blob upload commit answered HTTP {(int)commit.StatusCode}; expected 201.", statusCode: (int)commit.StatusCode);
            return hashing.Count;
        }
        finally
        {
            if (sessionOpen) await CancelUploadAsync(location).ConfigureAwait(false);
        }
    }

    /// <summary>Best effort <c>DELETE</c> of an upload session we will not commit (it would expire anyway).</summary>
    private async Task CancelUploadAsync(Uri location)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            using var _ = await SendAsync("REG-BLOB-005", "Blob upload cancel", () => new HttpRequestMessage(HttpMethod.Delete, location), cts.Token, retry: false).ConfigureAwait(false);
        }
        catch (RegistryException)
        {
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// Pushes an artifact manifest (one with a <c>subject</c>) by digest, byte for byte. When the registry
    /// does not answer with <c>OCI-Subject</c> (no referrers API), adds <paramref name="descriptor"/> to the
    /// <c>sha256-&lt;hex&gt;</c> fallback index of <paramref name="subject"/>. Returns true when the fallback was used.
    /// </summary>
    internal async Task<bool> PushReferrerAsync(string repository, byte[] bytes, string mediaType, Descriptor descriptor, Digest subject, CancellationToken ct)
    {
        var (_, subjectHeader) = await PushManifestCoreAsync(repository, descriptor.Digest.ToString(), bytes, mediaType, ct).ConfigureAwait(false);
        if (subjectHeader) return false;
        var tag = ReferrersTag(subject);
        var existing = await GetReferrersIndexByTagAsync(repository, tag, ct).ConfigureAwait(false);
        if (existing.Manifests.Any(m => m.Digest == descriptor.Digest)) return true;
        var updated = new ImageIndex([.. existing.Manifests, descriptor]);
        await PushManifestAsync(repository, tag, updated.ToJsonBytes(), MediaTypes.OciIndex, ct).ConfigureAwait(false);
        return true;
    }

    /// <summary>A read-only pass-through that reports bytes read.</summary>
    private sealed class CountingReadStream(Stream inner, Action<long>? report) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, count);
            report?.Invoke(n);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            report?.Invoke(n);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
