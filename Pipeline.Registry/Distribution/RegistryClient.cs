using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

/// <summary>A manifest as the registry served it: raw bytes, content type, and the digest of the bytes.</summary>
public sealed record ManifestResponse(byte[] Bytes, string MediaType, Digest Digest);

/// <summary>What <see cref="RegistryClient.PushImageAsync"/> did.</summary>
public sealed record PushResult(Digest ManifestDigest, int BlobsUploaded, int BlobsSkipped, int BlobsMounted);

/// <summary>What <see cref="RegistryClient.PushImageBlobsAsync"/> did with an image's blobs.</summary>
public sealed record BlobPushCounts(int Uploaded, int Skipped, int Mounted);

/// <summary>
/// A client for the OCI distribution API (plain http or https with an optional operator CA bundle;
/// anonymous, Basic, or Bearer tokens through the <c>WWW-Authenticate</c> challenge flow; retries
/// with backoff for transient failures; monolithic and resumable chunked uploads; referrers with the
/// tag-schema fallback). Every blob
/// and manifest read is hashed and size-capped; every write checks what the registry says it stored.
/// Failures are <see cref="RegistryException"/> with a stable code, the registry's own error code and
/// HTTP status, <c>IsTransient</c> for 5xx/429/timeouts/connection errors, and redacted URLs.
/// </summary>
public sealed partial class RegistryClient : IDisposable
{
    /// <summary>Manifests larger than this are refused (the spec asks registries to accept at least 4 MiB).</summary>
    public const int MaxManifestBytes = 4 * 1024 * 1024;

    /// <summary>Default cap for blob downloads.</summary>
    public const long DefaultMaxBlobBytes = 4L * 1024 * 1024 * 1024;

    private const int MaxErrorBodyBytes = 64 * 1024;

    private static readonly string[] ManifestAccept =
        [MediaTypes.OciManifest, MediaTypes.OciIndex, MediaTypes.DockerManifest, MediaTypes.DockerManifestList];

    private readonly RegistryEndpoint _endpoint;
    private readonly RegistryClientOptions _options;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private volatile bool _sendBasic;
    private readonly BearerAuth _bearer;

    /// <summary>A client with default options; <paramref name="http"/> is for tests.</summary>
    public RegistryClient(RegistryEndpoint endpoint, HttpClient? http = null) : this(endpoint, RegistryClientOptions.Default, http)
    {
    }

    /// <summary>A client with the given options; <paramref name="http"/> (for tests) bypasses the TLS options.</summary>
    public RegistryClient(RegistryEndpoint endpoint, RegistryClientOptions options, HttpClient? http = null)
    {
        _endpoint = endpoint ?? throw new ArgumentNullException(nameof(endpoint));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _options.Validate();
        _ownsHttp = http is null;
        _http = http ?? new HttpClient(_options.CreateHandler()) { Timeout = _options.RequestTimeout };
        _bearer = new BearerAuth(endpoint);
    }

    /// <summary>The registry this client talks to.</summary>
    public RegistryEndpoint Endpoint => _endpoint;

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
    }

    /// <summary><c>GET /v2/</c>: succeeds when the registry answers 200 (after auth, if configured).</summary>
    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        using var response = await SendAsync("REG-PING-001", "Ping", () => new HttpRequestMessage(HttpMethod.Get, Url("v2/")), cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-PING-001", "Ping", cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>HEAD /v2/&lt;repo&gt;/blobs/&lt;digest&gt;</c>: true on 200, false on 404.</summary>
    public async Task<bool> BlobExistsAsync(string repository, Digest digest, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        using var response = await SendAsync("REG-BLOB-007", "Blob check", () => new HttpRequestMessage(HttpMethod.Head, Url($"v2/{repository}/blobs/{digest}")), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await EnsureSuccessAsync(response, "REG-BLOB-007", "Blob check", cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Pushes a blob from a file. See <see cref="PushBlobAsync(string, Descriptor, Func{Stream}, CancellationToken)"/>.</summary>
    public Task<bool> PushBlobAsync(string repository, Descriptor descriptor, string path, CancellationToken cancellationToken = default) =>
        PushBlobAsync(repository, descriptor, () => new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan), cancellationToken);

    /// <summary>
    /// Monolithic upload (<c>POST</c> then <c>PUT ?digest=</c>) unless the blob exists already.
    /// Returns true when bytes were uploaded, false when skipped. The content is hashed while it is
    /// sent; the registry's <c>Docker-Content-Digest</c> and <c>Location</c> are checked.
    /// </summary>
    public async Task<bool> PushBlobAsync(string repository, Descriptor descriptor, Func<Stream> open, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(descriptor);
        ArgumentNullException.ThrowIfNull(open);
        if (await BlobExistsAsync(repository, descriptor.Digest, cancellationToken).ConfigureAwait(false)) return false;
        var location = await StartUploadAsync(repository, null, null, cancellationToken).ConfigureAwait(false);
        await CompleteUploadAsync(location!, descriptor, open, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>
    /// Tries a cross-repository mount of <paramref name="digest"/> from <paramref name="fromRepository"/>.
    /// Returns true when mounted; false when the registry declined (an upload session it opened is left to expire).
    /// </summary>
    public async Task<bool> MountBlobAsync(string repository, Digest digest, string fromRepository, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        References.ValidateRepository(fromRepository);
        var location = await StartUploadAsync(repository, digest, fromRepository, cancellationToken).ConfigureAwait(false);
        return location is null;
    }

    /// <summary>
    /// Downloads a blob into <paramref name="destination"/>, hashing and counting as it streams;
    /// throws (<c>REG-BLOB-001/002/003</c>) on a digest or size mismatch or when the cap is exceeded.
    /// On failure the destination holds unverified bytes: discard it.
    /// </summary>
    public async Task<long> GetBlobAsync(string repository, Digest digest, Stream destination, long? expectedSize = null,
        long maxBytes = DefaultMaxBlobBytes, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(destination);
        var cap = expectedSize ?? maxBytes;
        using var response = await SendAsync("REG-BLOB-007", "Blob download", () => new HttpRequestMessage(HttpMethod.Get, Url($"v2/{repository}/blobs/{digest}")), cancellationToken, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-BLOB-007", "Blob download", cancellationToken).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength is { } announced && announced > cap)
            throw new RegistryException("REG-BLOB-003", $"Blob {digest} is announced as {announced} bytes, over the limit of {cap}.");
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var hashing = new HashingStream(destination, digest.CreateHash(), leaveOpen: true, maxBytes: cap);
        await body.CopyToAsync(hashing, cancellationToken).ConfigureAwait(false);
        var actual = Digest.FromHash(digest.Algorithm, hashing.GetHash());
        if (expectedSize is { } size && hashing.Count != size)
            throw new RegistryException("REG-BLOB-002", $"Blob {digest} has {hashing.Count} bytes, expected {size}.");
        if (actual != digest)
            throw new RegistryException("REG-BLOB-001", $"Blob digest mismatch from the registry: expected {digest}, got {actual}.");
        return hashing.Count;
    }

    /// <summary>
    /// <c>PUT /v2/&lt;repo&gt;/manifests/&lt;reference&gt;</c>. Returns the sha256 of the bytes and checks that the
    /// registry's <c>Docker-Content-Digest</c> (when sent) equals it.
    /// </summary>
    public async Task<Digest> PushManifestAsync(string repository, string reference, byte[] bytes, string mediaType, CancellationToken cancellationToken = default) =>
        (await PushManifestCoreAsync(repository, reference, bytes, mediaType, cancellationToken).ConfigureAwait(false)).Digest;

    private async Task<(Digest Digest, bool SubjectHeader)> PushManifestCoreAsync(string repository, string reference, byte[] bytes, string mediaType, CancellationToken cancellationToken)
    {
        References.ValidateRepository(repository);
        References.ValidateReference(reference);
        ArgumentNullException.ThrowIfNull(bytes);
        if (bytes.Length > MaxManifestBytes)
            throw new RegistryException("REG-MANIFEST-005", $"Manifest is {bytes.Length} bytes, over the limit of {MaxManifestBytes}.");
        var digest = Digest.Compute(bytes);
        if (!References.IsTag(reference) && Digest.Parse(reference) != digest)
            throw new RegistryException("REG-MANIFEST-003", $"Manifest bytes hash to {digest}, not to the reference {reference}.");
        using var response = await SendAsync("REG-MANIFEST-002", "Manifest push", () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, Url($"v2/{repository}/manifests/{reference}"))
            {
                Content = new ByteArrayContent(bytes),
            };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(mediaType);
            return request;
        }, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-MANIFEST-002", "Manifest push", cancellationToken).ConfigureAwait(false);
        var claimed = HeaderDigest(response);
        if (claimed is not null && claimed != digest)
            throw new RegistryException("REG-MANIFEST-003", $"The registry stored the manifest as {claimed}, but its bytes hash to {digest}.", statusCode: (int)response.StatusCode);
        return (digest, response.Headers.Contains("OCI-Subject"));
    }

    /// <summary>
    /// <c>GET /v2/&lt;repo&gt;/manifests/&lt;reference&gt;</c> accepting OCI and Docker manifests and indexes.
    /// Size-capped; the digest of the bytes must equal the reference when it is a digest, and the
    /// registry's <c>Docker-Content-Digest</c> when sent.
    /// </summary>
    public async Task<ManifestResponse> GetManifestAsync(string repository, string reference, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        References.ValidateReference(reference);
        using var response = await SendAsync("REG-MANIFEST-004", "Manifest download", () =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, Url($"v2/{repository}/manifests/{reference}"));
            foreach (var mt in ManifestAccept) request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(mt));
            return request;
        }, cancellationToken, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-MANIFEST-004", "Manifest download", cancellationToken).ConfigureAwait(false);
        var mediaType = response.Content.Headers.ContentType?.MediaType
            ?? throw new RegistryException("REG-MANIFEST-004", "The registry sent a manifest without a Content-Type.");
        var bytes = await ReadCappedAsync(response, MaxManifestBytes, "REG-MANIFEST-005", cancellationToken).ConfigureAwait(false)
            ?? throw new RegistryException("REG-MANIFEST-005", $"Manifest {repository}:{reference} is over the limit of {MaxManifestBytes} bytes.");
        var algorithm = References.IsTag(reference) ? Digest.Sha256 : Digest.Parse(reference).Algorithm;
        var digest = Digest.FromHash(algorithm, algorithm == Digest.Sha512 ? SHA512.HashData(bytes) : SHA256.HashData(bytes));
        if (!References.IsTag(reference) && Digest.Parse(reference) != digest)
            throw new RegistryException("REG-MANIFEST-003", $"Manifest requested as {reference} hashes to {digest}; refusing it.");
        var claimed = HeaderDigest(response);
        if (claimed is not null && claimed.Algorithm == digest.Algorithm && claimed != digest)
            throw new RegistryException("REG-MANIFEST-003", $"The registry says the manifest is {claimed}, but its bytes hash to {digest}; refusing it.");
        return new ManifestResponse(bytes, mediaType, digest);
    }

    // ---------------------------------------------------------------- internals

    private Uri Url(string relative) => new(_endpoint.BaseUri, relative);

    /// <summary>POST an upload; returns the Location for the PUT, or null when a mount completed (201).</summary>
    private async Task<Uri?> StartUploadAsync(string repository, Digest? mount, string? from, CancellationToken ct)
    {
        var query = mount is null ? "" : $"?mount={Uri.EscapeDataString(mount.ToString())}&from={Uri.EscapeDataString(from!)}";
        using var response = await SendAsync("REG-BLOB-005", "Blob upload start", () => new HttpRequestMessage(HttpMethod.Post, Url($"v2/{repository}/blobs/uploads/{query}"))
        {
            Content = new ByteArrayContent([]),
        }, ct).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-BLOB-005", "Blob upload start", ct).ConfigureAwait(false);
        if (mount is not null && response.StatusCode == HttpStatusCode.Created) return null;
        if (response.StatusCode != HttpStatusCode.Accepted)
            throw new RegistryException("REG-BLOB-005", $"Blob upload start answered HTTP {(int)response.StatusCode}, expected 202.", statusCode: (int)response.StatusCode);
        var location = response.Headers.Location
            ?? throw new RegistryException("REG-BLOB-005", "Blob upload start answered 202 without a Location header.", statusCode: 202);
        return location.IsAbsoluteUri ? location : new Uri(_endpoint.BaseUri, location);
    }

    private async Task CompleteUploadAsync(Uri location, Descriptor descriptor, Func<Stream> open, CancellationToken ct)
    {
        var builder = new UriBuilder(location);
        var digestParam = "digest=" + Uri.EscapeDataString(descriptor.Digest.ToString());
        builder.Query = builder.Query.Length > 1 ? builder.Query[1..] + "&" + digestParam : digestParam;
        HashingStream? sent = null;
        using var response = await SendAsync("REG-BLOB-005", "Blob upload", () =>
        {
            sent?.Dispose();
            sent = new HashingStream(open(), descriptor.Digest.CreateHash(), leaveOpen: false, maxBytes: descriptor.Size);
            var content = new StreamContent(sent, 1 << 20);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Headers.ContentLength = descriptor.Size;
            return new HttpRequestMessage(HttpMethod.Put, builder.Uri) { Content = content };
        }, ct).ConfigureAwait(false);
        try
        {
            await EnsureSuccessAsync(response, "REG-BLOB-005", "Blob upload", ct).ConfigureAwait(false);
            var local = Digest.FromHash(descriptor.Digest.Algorithm, sent!.GetHash());
            if (sent.Count != descriptor.Size || local != descriptor.Digest)
                throw new RegistryException("REG-BLOB-001", $"Local blob content for {descriptor.Digest} hashed to {local} ({sent.Count} bytes); the blob store is corrupt.");
            var claimed = HeaderDigest(response);
            if (claimed is not null && claimed != descriptor.Digest)
                throw new RegistryException("REG-BLOB-006", $"The registry stored the blob as {claimed}, expected {descriptor.Digest}.", statusCode: (int)response.StatusCode);
            if (response.StatusCode != HttpStatusCode.Created || response.Headers.Location is null)
                throw new RegistryException("REG-BLOB-006", $"Blob upload answered HTTP {(int)response.StatusCode} {(response.Headers.Location is null ? "without" : "with")} a Location; expected 201 with the blob's Location.", statusCode: (int)response.StatusCode);
        }
        finally
        {
            sent?.Dispose();
        }
    }

    private static Digest? HeaderDigest(HttpResponseMessage response)
    {
        if (!response.Headers.TryGetValues("Docker-Content-Digest", out var values)) return null;
        var value = values.FirstOrDefault();
        if (!Digest.TryParse(value, out var digest, out var reason))
            throw new RegistryException("REG-DIGEST-001", $"The registry sent an invalid Docker-Content-Digest '{Safe.Printable(value)}': {reason}.");
        return digest;
    }
}
