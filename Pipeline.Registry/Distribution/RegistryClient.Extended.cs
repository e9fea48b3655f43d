using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

/// <summary>What <see cref="RegistryClient.AttachArtifactAsync"/> did.</summary>
/// <param name="ManifestDigest">Digest of the artifact manifest (its <c>subject</c> is the image).</param>
/// <param name="UsedFallbackTag">True when the registry has no referrers API and the <c>sha256-&lt;hex&gt;</c> index tag was updated.</param>
public sealed record AttachResult(Descriptor Manifest, bool UsedFallbackTag)
{
    public Digest ManifestDigest => Manifest.Digest;
}

public sealed partial class RegistryClient
{
    /// <summary>The empty JSON config of OCI 1.1 artifacts (<c>{}</c>).</summary>
    public static readonly byte[] EmptyConfigBytes = "{}"u8.ToArray();

    /// <summary>
    /// Chunked, resumable upload (<c>POST</c>, <c>PATCH</c> with <c>Content-Range</c> per chunk, <c>PUT ?digest=</c>).
    /// Skips the blob when it exists. A failed chunk is retried from the offset the registry reports;
    /// when the source or the registry keeps failing, <see cref="BlobUploadInterruptedException"/>
    /// carries the session so a later call with <paramref name="resumeLocation"/> continues where it
    /// stopped. The whole content is hashed locally and must match the descriptor before the final PUT.
    /// </summary>
    public async Task<bool> PushBlobChunkedAsync(string repository, Descriptor descriptor, Func<Stream> open, Uri? resumeLocation = null,
        CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(descriptor);
        ArgumentNullException.ThrowIfNull(open);
        if (await BlobExistsAsync(repository, descriptor.Digest, cancellationToken).ConfigureAwait(false)) return false;
        await ChunkedUploadAsync(repository, descriptor, open, resumeLocation, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Asks the registry how many bytes an upload session holds (<c>GET</c> on the session, <c>Range: 0-&lt;end&gt;</c>).</summary>
    public async Task<(Uri Location, long Offset)> GetUploadStatusAsync(Uri location, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(location);
        if (!SameOrigin(location)) throw new RegistryException("REG-BLOB-005", $"Upload session {Redaction.Redact(location)} is not on this registry.");
        using var response = await SendAsync("REG-BLOB-005", "Upload status", () => new HttpRequestMessage(HttpMethod.Get, location), cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-BLOB-005", "Upload status", cancellationToken).ConfigureAwait(false);
        return (NextLocation(response, location), RangeEnd(response) is { } end ? end + 1 : 0);
    }

    private async Task ChunkedUploadAsync(string repository, Descriptor descriptor, Func<Stream> open, Uri? resumeLocation, CancellationToken ct)
    {
        Uri location;
        long offset = 0;
        if (resumeLocation is null)
        {
            location = (await StartUploadAsync(repository, null, null, ct).ConfigureAwait(false))!;
        }
        else
        {
            (location, offset) = await GetUploadStatusAsync(resumeLocation, ct).ConfigureAwait(false);
            if (offset > descriptor.Size)
                throw new RegistryException("REG-BLOB-005", $"The upload session holds {offset} bytes, more than the blob's {descriptor.Size}.");
        }

        using var hash = descriptor.Digest.CreateHash();
        var buffer = ArrayPool<byte>.Shared.Rent(_options.ChunkSize);
        try
        {
            await using var source = OpenSource(open, location, offset);
            // Bytes the registry already has: hash them locally (read, not sent).
            await ReadPrefixAsync(source, hash, buffer, offset, location, ct).ConfigureAwait(false);
            while (true)
            {
                var n = await FillAsync(source, buffer, location, offset, ct).ConfigureAwait(false);
                if (n == 0) break;
                if (offset + n > descriptor.Size)
                    throw new RegistryException("REG-BLOB-001", $"Local content for {descriptor.Digest} is longer than the descriptor's {descriptor.Size} bytes; the blob store is corrupt.");
                (location, var accepted) = await SendChunkAsync(location, buffer, n, offset, ct).ConfigureAwait(false);
                hash.AppendData(buffer, 0, n);
                offset += accepted;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        var local = Digest.FromHash(descriptor.Digest.Algorithm, hash.GetHashAndReset());
        if (offset != descriptor.Size || local != descriptor.Digest)
            throw new RegistryException("REG-BLOB-001", $"Local blob content for {descriptor.Digest} hashed to {local} ({offset} bytes); the blob store is corrupt. Nothing was committed.");

        var builder = new UriBuilder(location);
        var digestParam = "digest=" + Uri.EscapeDataString(descriptor.Digest.ToString());
        builder.Query = builder.Query.Length > 1 ? builder.Query[1..] + "&" + digestParam : digestParam;
        using var response = await SendAsync("REG-BLOB-005", "Blob upload commit", () => new HttpRequestMessage(HttpMethod.Put, builder.Uri)
        {
            Content = new ByteArrayContent([]),
        }, ct).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-BLOB-005", "Blob upload commit", ct).ConfigureAwait(false);
        var claimed = HeaderDigest(response);
        if (claimed is not null && claimed != descriptor.Digest)
            throw new RegistryException("REG-BLOB-006", $"The registry stored the blob as {claimed}, expected {descriptor.Digest}.", statusCode: (int)response.StatusCode);
        if (response.StatusCode != HttpStatusCode.Created)
            throw new RegistryException("REG-BLOB-006", $"Blob upload commit answered HTTP {(int)response.StatusCode}; expected 201.", statusCode: (int)response.StatusCode);
    }

    private static Stream OpenSource(Func<Stream> open, Uri location, long offset)
    {
        try
        {
            return open();
        }
        catch (IOException ex)
        {
            throw new BlobUploadInterruptedException($"Cannot open the local blob content: {ex.GetType().Name}; the upload can be resumed.", location, offset, false, ex);
        }
    }

    private static async Task ReadPrefixAsync(Stream source, System.Security.Cryptography.IncrementalHash hash, byte[] buffer, long count, Uri location, CancellationToken ct)
    {
        var left = count;
        while (left > 0)
        {
            var n = await FillAsync(source, buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), location, 0, ct).ConfigureAwait(false);
            if (n == 0) throw new RegistryException("REG-BLOB-001", "The local content is shorter than what the upload session already holds.");
            hash.AppendData(buffer, 0, n);
            left -= n;
        }
    }

    private static Task<int> FillAsync(Stream source, byte[] buffer, Uri location, long offset, CancellationToken ct) =>
        FillAsync(source, buffer.AsMemory(), location, offset, ct);

    private static async Task<int> FillAsync(Stream source, Memory<byte> buffer, Uri location, long offset, CancellationToken ct)
    {
        var total = 0;
        try
        {
            while (total < buffer.Length)
            {
                var n = await source.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
                if (n == 0) break;
                total += n;
            }
        }
        catch (IOException ex)
        {
            throw new BlobUploadInterruptedException($"Reading the local blob content failed at byte {offset + total} ({ex.GetType().Name}); the registry holds {offset} bytes and the upload can be resumed.",
                location, offset, false, ex);
        }
        return total;
    }

    /// <summary>PATCHes one chunk; on failure asks the registry where it stands and sends the rest.</summary>
    private async Task<(Uri Location, int Accepted)> SendChunkAsync(Uri location, byte[] buffer, int length, long offset, CancellationToken ct)
    {
        var sentFrom = 0; // bytes of this chunk the registry holds
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var start = offset + sentFrom;
                var count = length - sentFrom;
                var from = sentFrom;
                using var response = await SendAsync("REG-BLOB-005", "Blob chunk upload", () =>
                {
                    var content = new ByteArrayContent(buffer, from, count);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
                    content.Headers.ContentLength = count;
                    content.Headers.TryAddWithoutValidation("Content-Range", string.Create(CultureInfo.InvariantCulture, $"{start}-{start + count - 1}"));
                    return new HttpRequestMessage(HttpMethod.Patch, location) { Content = content };
                }, ct, retry: false).ConfigureAwait(false);
                await EnsureSuccessAsync(response, "REG-BLOB-005", "Blob chunk upload", ct).ConfigureAwait(false);
                if (response.StatusCode != HttpStatusCode.Accepted)
                    throw new RegistryException("REG-BLOB-005", $"Blob chunk upload answered HTTP {(int)response.StatusCode}, expected 202.", statusCode: (int)response.StatusCode);
                var end = RangeEnd(response);
                if (end is { } e && e != offset + length - 1)
                    throw new RegistryException("REG-BLOB-005", $"After a chunk the registry holds bytes 0-{e}, expected 0-{offset + length - 1}.", statusCode: 202);
                return (NextLocation(response, location), length);
            }
            catch (RegistryException ex) when (ex.IsTransient && attempt < _options.MaxAttempts && ex is not BlobUploadInterruptedException)
            {
                await DelayAsync(attempt, null, ct).ConfigureAwait(false);
                long held;
                try
                {
                    (location, held) = await GetUploadStatusAsync(location, ct).ConfigureAwait(false);
                }
                catch (RegistryException status) when (status.IsTransient)
                {
                    continue;
                }
                if (held < offset || held > offset + length)
                    throw new RegistryException("REG-BLOB-005", $"The upload session holds {held} bytes; expected between {offset} and {offset + length}.");
                sentFrom = (int)(held - offset);
                if (sentFrom == length) return (location, length);
            }
            catch (RegistryException ex) when (ex.IsTransient)
            {
                throw new BlobUploadInterruptedException($"The registry kept failing during a chunked upload at byte {offset + sentFrom}: {ex.Message} The upload can be resumed.",
                    location, offset + sentFrom, true, ex);
            }
        }
    }

    private Uri NextLocation(HttpResponseMessage response, Uri current)
    {
        var location = response.Headers.Location;
        if (location is null) return current;
        var next = location.IsAbsoluteUri ? location : new Uri(_endpoint.BaseUri, location);
        if (!SameOrigin(next)) throw new RegistryException("REG-BLOB-005", $"The registry moved the upload to another origin ({Redaction.Redact(next)}); refusing.");
        return next;
    }

    private static long? RangeEnd(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Range", out var values)) return null;
        var value = values.FirstOrDefault() ?? "";
        if (value.StartsWith("bytes=", StringComparison.Ordinal)) value = value[6..];
        var dash = value.IndexOf('-');
        if (dash <= 0 || !long.TryParse(value[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var end) || value[..dash] != "0")
            throw new RegistryException("REG-BLOB-005", $"The registry sent an invalid upload Range '{Safe.Printable(value)}'.");
        return end;
    }

    // ---------------------------------------------------------------- index

    /// <summary>
    /// Pushes an image index under <paramref name="reference"/> (tag or digest) after checking that
    /// every manifest it lists exists in the repository (<c>REG-INDEX-002</c> otherwise).
    /// </summary>
    public async Task<Digest> PushIndexAsync(string repository, string reference, ImageIndex index, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(index);
        foreach (var m in index.Manifests)
        {
            if (!await ManifestExistsAsync(repository, m.Digest, cancellationToken).ConfigureAwait(false))
                throw new RegistryException("REG-INDEX-002", $"Index entry {m.Digest} ({m.Platform?.Os}/{m.Platform?.Architecture}) is not in '{repository}'; push the images first.");
        }
        return await PushManifestAsync(repository, reference, index.ToJsonBytes(), index.MediaType, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>HEAD /v2/&lt;repo&gt;/manifests/&lt;digest&gt;</c>: true on 200, false on 404.</summary>
    public async Task<bool> ManifestExistsAsync(string repository, Digest digest, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        using var response = await SendAsync("REG-MANIFEST-004", "Manifest check", () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Head, Url($"v2/{repository}/manifests/{digest}"));
            foreach (var a in ManifestAccept) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(a));
            return request;
        }, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await EnsureSuccessAsync(response, "REG-MANIFEST-004", "Manifest check", cancellationToken).ConfigureAwait(false);
        return true;
    }

    // ---------------------------------------------------------------- referrers

    /// <summary>The referrers fallback tag of a subject: <c>sha256-&lt;hex&gt;</c>.</summary>
    public static string ReferrersTag(Digest subject) => $"{subject.Algorithm}-{subject.Hex}";

    /// <summary>
    /// Attaches an artifact to <paramref name="subject"/> (OCI 1.1): pushes the blobs, an empty config
    /// and a manifest with <c>artifactType</c> and <c>subject</c>, by digest. When the registry does
    /// not answer the push with <c>OCI-Subject</c> (no referrers API), the referrers index under the tag
    /// <c>sha256-&lt;hex&gt;</c> is read, extended and rewritten (a concurrent writer can lose an entry:
    /// the fallback has no locking in the spec).
    /// </summary>
    public async Task<AttachResult> AttachArtifactAsync(string repository, Descriptor subject, string artifactType,
        IReadOnlyList<(Descriptor Descriptor, byte[] Content)> blobs, IReadOnlyDictionary<string, string>? annotations = null,
        CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(blobs);
        if (!OciJson.IsValidMediaType(artifactType)) throw new RegistryException("REG-DESC-001", $"Invalid artifact type '{Safe.Printable(artifactType)}'.");
        foreach (var (d, content) in blobs)
        {
            if (Digest.Compute(content) != d.Digest || content.LongLength != d.Size)
                throw new RegistryException("REG-BLOB-001", $"Artifact blob content does not match its descriptor {d.Digest}.");
            await PushBlobAsync(repository, d, () => new MemoryStream(content, writable: false), cancellationToken).ConfigureAwait(false);
        }
        var emptyConfig = new Descriptor(MediaTypes.OciEmpty, Digest.Compute(EmptyConfigBytes), EmptyConfigBytes.Length);
        await PushBlobAsync(repository, emptyConfig, () => new MemoryStream(EmptyConfigBytes, writable: false), cancellationToken).ConfigureAwait(false);
        var manifest = new ImageManifest(emptyConfig, blobs.Select(b => b.Descriptor).ToArray(), MediaTypes.OciManifest,
            annotations is { Count: > 0 } ? annotations : null, subject, artifactType);
        var bytes = manifest.ToJsonBytes();
        var digest = Digest.Compute(bytes);
        var descriptor = new Descriptor(MediaTypes.OciManifest, digest, bytes.LongLength, manifest.Annotations, ArtifactType: artifactType);
        var fallback = await PushReferrerAsync(repository, bytes, MediaTypes.OciManifest, descriptor, subject.Digest, cancellationToken).ConfigureAwait(false);
        return new AttachResult(descriptor, fallback);
    }

    /// <summary>
    /// Lists the artifacts attached to <paramref name="subject"/>: the referrers API when the registry
    /// has it, else the <c>sha256-&lt;hex&gt;</c> fallback index; filtered by <paramref name="artifactType"/> when given.
    /// </summary>
    public async Task<IReadOnlyList<Descriptor>> ListReferrersAsync(string repository, Digest subject, string? artifactType = null,
        CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ImageIndex index;
        using (var response = await SendAsync("REG-REFERRERS-001", "Referrers", () =>
               {
                   var request = new HttpRequestMessage(HttpMethod.Get, Url($"v2/{repository}/referrers/{subject}"));
                   request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(MediaTypes.OciIndex));
                   return request;
               }, cancellationToken).ConfigureAwait(false))
        {
            var type = response.Content.Headers.ContentType?.MediaType;
            if (response.StatusCode == HttpStatusCode.OK && type == MediaTypes.OciIndex)
            {
                var bytes = await ReadCappedAsync(response, MaxManifestBytes, "REG-REFERRERS-001", cancellationToken).ConfigureAwait(false)
                            ?? throw new RegistryException("REG-REFERRERS-001", "The referrers index is too large.");
                index = ImageIndex.Parse(bytes, type);
            }
            else if (response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.OK)
            {
                index = await GetReferrersIndexByTagAsync(repository, ReferrersTag(subject), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await EnsureSuccessAsync(response, "REG-REFERRERS-001", "Referrers", cancellationToken).ConfigureAwait(false);
                throw new RegistryException("REG-REFERRERS-001", $"Referrers answered HTTP {(int)response.StatusCode}.");
            }
        }
        return index.Manifests.Where(m => artifactType is null || m.ArtifactType == artifactType).ToArray();
    }

    private async Task<ImageIndex> GetReferrersIndexByTagAsync(string repository, string tag, CancellationToken ct)
    {
        try
        {
            var response = await GetManifestAsync(repository, tag, ct).ConfigureAwait(false);
            if (!MediaTypes.IsIndex(response.MediaType))
                throw new RegistryException("REG-REFERRERS-002", $"Tag '{tag}' in '{repository}' is not an index; refusing to overwrite it.");
            return ImageIndex.Parse(response.Bytes, response.MediaType);
        }
        catch (RegistryException ex) when (ex.StatusCode == 404)
        {
            return new ImageIndex([]);
        }
    }
}
