using System.IO.Compression;

namespace Pipeline.Registry.Layers;

/// <summary>
/// A write-only stream that gzips in parallel: the input is cut into fixed-size blocks, each block
/// is compressed on the thread pool into its own gzip member, and the members are written in order
/// (RFC 1952 multi-member gzip, as pigz and eStargz do; every gzip reader, Go's included, reads it
/// as one stream). The output depends only on the input bytes, the block size and the level, not on
/// timing or thread count: reproducible. Memory: about (2 × workers + 1) pooled blocks in and out.
/// A block whose first 32 KiB do not compress (already compressed or random data, the common case
/// for binaries) is stored (deflate level 0) instead of being searched for matches that are not
/// there; the decision depends only on the bytes.
/// </summary>
internal sealed class ParallelGzipStream : Stream
{
    /// <summary>Block size of one gzip member; part of the output format (changing it changes digests).</summary>
    public const int BlockSize = 1024 * 1024;

    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly int _level;
    private readonly int _maxInFlight;
    private readonly Queue<Task<(byte[] Buffer, int Length)>> _pending = new();

    /// <summary>Bytes of a block sampled to decide whether it is worth compressing.</summary>
    internal const int SampleSize = 32 * 1024;

    /// <summary>A sample that compresses to more than this fraction of its size makes the block stored.</summary>
    internal const double StoreThreshold = 0.97;
    private byte[] _block;
    private int _filled;
    private bool _closed;
    private bool _any;

    public ParallelGzipStream(Stream inner, int level, bool leaveOpen, int? workers = null)
    {
        _inner = inner;
        _level = level;
        _leaveOpen = leaveOpen;
        _maxInFlight = Math.Max(2, 2 * (workers ?? Environment.ProcessorCount));
        _block = System.Buffers.ArrayPool<byte>.Shared.Rent(BlockSize);
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_closed;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, BlockSize - _filled);
            buffer[..n].CopyTo(_block.AsSpan(_filled));
            _filled += n;
            buffer = buffer[n..];
            if (_filled == BlockSize) DispatchAsync(CancellationToken.None).GetAwaiter().GetResult();
        }
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        while (buffer.Length > 0)
        {
            var n = Math.Min(buffer.Length, BlockSize - _filled);
            buffer.Span[..n].CopyTo(_block.AsSpan(_filled));
            _filled += n;
            buffer = buffer[n..];
            if (_filled == BlockSize) await DispatchAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Flush does not cut a block (that would make the output depend on flush calls).</summary>
    public override void Flush()
    {
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void ReturnBlock()
    {
        if (_block.Length == 0) return;
        System.Buffers.ArrayPool<byte>.Shared.Return(_block);
        _block = [];
    }

    private async Task DispatchAsync(CancellationToken ct)
    {
        _any = true;
        var block = _block;
        var length = _filled;
        var level = _level;
        _pending.Enqueue(Task.Run(() =>
        {
            try
            {
                return Compress(block, length, level);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(block);
            }
        }, ct));
        _block = System.Buffers.ArrayPool<byte>.Shared.Rent(BlockSize);
        _filled = 0;
        while (_pending.Count >= _maxInFlight) await WriteNextAsync(ct).ConfigureAwait(false);
    }

    private async Task WriteNextAsync(CancellationToken ct)
    {
        var (buffer, length) = await _pending.Dequeue().ConfigureAwait(false);
        try
        {
            await _inner.WriteAsync(buffer.AsMemory(0, length), ct).ConfigureAwait(false);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>One gzip member for <paramref name="length"/> bytes of <paramref name="block"/>, in a pooled buffer.</summary>
    internal static (byte[] Buffer, int Length) Compress(byte[] block, int length, int level)
    {
        if (length == 0)
        {
            // zlib writes nothing for no input; a gzip stream needs at least one member.
            byte[] empty = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
            var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(empty.Length);
            empty.CopyTo(rented, 0);
            return (rented, empty.Length);
        }
        var effective = level > 0 && !WorthCompressing(block, length) ? 0 : level;
        var capacity = length + length / 16 + 4096;
        var output = System.Buffers.ArrayPool<byte>.Shared.Rent(capacity);
        try
        {
            int written;
            using (var ms = new MemoryStream(output, 0, output.Length, writable: true))
            {
                using (var gzip = new GZipStream(ms, new ZLibCompressionOptions { CompressionLevel = effective, CompressionStrategy = ZLibCompressionStrategy.Default }, leaveOpen: true))
                {
                    gzip.Write(block, 0, length);
                }
                written = (int)ms.Position;
            }
            output[9] = 3; // OS = Unix, whatever the platform's zlib writes: the bytes must not depend on the build host
            return (output, written);
        }
        catch
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(output);
            throw;
        }
    }

    /// <summary>True when a sample of the block compresses noticeably at level 1.</summary>
    internal static bool WorthCompressing(byte[] block, int length)
    {
        var n = Math.Min(SampleSize, length);
        if (n < 512) return true;
        var sample = System.Buffers.ArrayPool<byte>.Shared.Rent(n + n / 8 + 1024);
        try
        {
            using var ms = new MemoryStream(sample, 0, sample.Length, writable: true);
            using (var deflate = new DeflateStream(ms, new ZLibCompressionOptions { CompressionLevel = 1 }, leaveOpen: true))
            {
                deflate.Write(block, 0, n);
            }
            return ms.Position < n * StoreThreshold;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(sample);
        }
    }

    /// <summary>Compresses the last (partial) block and writes every pending member in order.</summary>
    public async Task CompleteAsync(CancellationToken ct)
    {
        if (_closed) return;
        if (_filled > 0 || !_any) await DispatchAsync(ct).ConfigureAwait(false);
        while (_pending.Count > 0) await WriteNextAsync(ct).ConfigureAwait(false);
        await _inner.FlushAsync(ct).ConfigureAwait(false);
        _closed = true;
    }


    public override async ValueTask DisposeAsync()
    {
        await CompleteAsync(CancellationToken.None).ConfigureAwait(false);
        ReturnBlock();
        if (!_leaveOpen) await _inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            CompleteAsync(CancellationToken.None).GetAwaiter().GetResult();
            ReturnBlock();
            if (!_leaveOpen) _inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
