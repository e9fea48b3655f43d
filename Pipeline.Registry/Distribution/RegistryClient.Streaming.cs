using System.Buffers;
using System.Net;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

public sealed partial class RegistryClient
{
    /// <summary>
    /// Builds a layer and uploads it while it is being built: the compressed bytes go to the blob
    /// store and, chunk by chunk (<see cref="RegistryClientOptions.ChunkSize"/>, one chunk in flight
    /// while the next is filled), to an upload session that is committed with the digest once the
    /// build is done. Build and upload overlap, so the time is about the slower of the two. The
    /// registry checks the digest at commit; a failed build leaves an uncommitted session (it expires).
    /// </summary>
    public async Task<Layer> BuildAndPushLayerAsync(string repository, LayerBuilder builder, IReadOnlyList<LayerEntry> entries,
        DateTimeOffset modificationTime, LayerCompression compression = LayerCompression.Gzip, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(builder);
        var location = (await StartUploadAsync(repository, null, null, cancellationToken).ConfigureAwait(false))!;
        var upload = new StreamingUpload(this, location, _options.ChunkSize, cancellationToken);
        Layer layer;
        try
        {
            layer = await builder.BuildAsync(entries, modificationTime, compression, upload, cancellationToken).ConfigureAwait(false);
            await upload.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            upload.ReleaseBuffers();
        }
        if (upload.Offset != layer.Descriptor.Size)
            throw new RegistryException("REG-BLOB-005", $"Streamed {upload.Offset} bytes but the layer has {layer.Descriptor.Size}.");

        var builderUri = new UriBuilder(upload.Location);
        var digestParam = "digest=" + Uri.EscapeDataString(layer.Descriptor.Digest.ToString());
        builderUri.Query = builderUri.Query.Length > 1 ? builderUri.Query[1..] + "&" + digestParam : digestParam;
        using var response = await SendAsync("REG-BLOB-005", "Blob upload commit", () => new HttpRequestMessage(HttpMethod.Put, builderUri.Uri)
        {
            Content = new ByteArrayContent([]),
        }, cancellationToken).ConfigureAwait(false);
        await EnsureSuccessAsync(response, "REG-BLOB-005", "Blob upload commit", cancellationToken).ConfigureAwait(false);
        var claimed = HeaderDigest(response);
        if (claimed is not null && claimed != layer.Descriptor.Digest)
            throw new RegistryException("REG-BLOB-006", $"The registry stored the blob as {claimed}, expected {layer.Descriptor.Digest}.", statusCode: (int)response.StatusCode);
        if (response.StatusCode != HttpStatusCode.Created)
            throw new RegistryException("REG-BLOB-006", $"Blob upload commit answered HTTP {(int)response.StatusCode}; expected 201.", statusCode: (int)response.StatusCode);
        return layer;
    }

    /// <summary>A write-only stream that PATCHes full chunks to an upload session in the background.</summary>
    private sealed class StreamingUpload(RegistryClient client, Uri location, int chunkSize, CancellationToken ct) : Stream
    {
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(chunkSize);
        private byte[]? _spare = ArrayPool<byte>.Shared.Rent(chunkSize);
        private int _filled;
        private Task? _inFlight;

        public Uri Location { get; private set; } = location;
        public long Offset { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Flush() { }
        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Write(byte[] buffer, int offset, int count) =>
            WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
        {
            while (data.Length > 0)
            {
                var n = Math.Min(data.Length, chunkSize - _filled);
                data.Span[..n].CopyTo(_buffer.AsSpan(_filled));
                _filled += n;
                data = data[n..];
                if (_filled == chunkSize) await SendFilledAsync().ConfigureAwait(false);
            }
        }

        private async Task SendFilledAsync()
        {
            if (_inFlight is not null) await _inFlight.ConfigureAwait(false);
            var full = _buffer;
            var length = _filled;
            _buffer = _spare!;
            _spare = full;
            _filled = 0;
            var start = Offset;
            _inFlight = Task.Run(async () =>
            {
                var (next, accepted) = await client.SendChunkAsync(Location, full, length, start, ct).ConfigureAwait(false);
                Location = next;
                Offset = start + accepted;
            }, ct);
        }

        public async Task CompleteAsync()
        {
            if (_filled > 0) await SendFilledAsync().ConfigureAwait(false);
            if (_inFlight is not null) await _inFlight.ConfigureAwait(false);
        }

        public void ReleaseBuffers()
        {
            try
            {
                _inFlight?.Wait(TimeSpan.FromMinutes(1));
            }
            catch (AggregateException)
            {
            }
            if (_inFlight is null || _inFlight.IsCompleted)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                if (_spare is not null) ArrayPool<byte>.Shared.Return(_spare);
                _spare = null;
                _buffer = [];
            }
        }
    }
}
