using System.IO.Compression;
using System.Security.Cryptography;
using System.Threading.Channels;

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
/// <para>The caller's thread only fills blocks. Hashing the input (the layer's diffID, when an
/// <c>inputHash</c> is given) and writing the members to the inner stream (which hashes the
/// compressed bytes and writes the file) run in two background pumps, each in block order, so the
/// three sequential passes over the data (tar, sha256 of the tar, sha256 + write of the output) run
/// side by side instead of one after another on one core.</para>
/// </summary>
internal sealed class ParallelGzipStream : Stream
{
    /// <summary>Block size of one gzip member; part of the output format (changing it changes digests).</summary>
    public const int BlockSize = 1024 * 1024;

    /// <summary>Bytes of a block sampled to decide whether it is worth compressing.</summary>
    internal const int SampleSize = 32 * 1024;

    /// <summary>A sample that compresses to more than this fraction of its size makes the block stored.</summary>
    internal const double StoreThreshold = 0.97;

    private sealed class Item(byte[] block, int length, Task<(byte[] Buffer, int Length)> compressed, int refs)
    {
        public byte[] Block { get; } = block;
        public int Length { get; } = length;
        public Task<(byte[] Buffer, int Length)> Compressed { get; } = compressed;
        public int Refs = refs;
    }

    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly int _level;
    private readonly int _maxInFlight;
    private readonly IncrementalHash? _inputHash;
    private readonly SemaphoreSlim _slots;
    private readonly Channel<Item> _toWrite = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly Channel<Item>? _toHash;
    private readonly Task _writePump;
    private readonly Task _hashPump;
    private volatile Exception? _fault;
    private byte[] _block;
    private int _filled;
    private bool _closed;
    private bool _any;

    /// <param name="inner">Receives the gzip members in order (from a background task, one write at a time).</param>
    /// <param name="level">zlib level of compressible blocks.</param>
    /// <param name="leaveOpen">Leave <paramref name="inner"/> open on dispose.</param>
    /// <param name="workers">Blocks compressed at once (default: the processor count); does not change the output.</param>
    /// <param name="inputHash">When given, every input byte is appended to it, in order, off the caller's thread;
    /// read it only after <see cref="CompleteAsync"/> or disposal.</param>
    public ParallelGzipStream(Stream inner, int level, bool leaveOpen, int? workers = null, IncrementalHash? inputHash = null)
    {
        _inner = inner;
        _level = level;
        _leaveOpen = leaveOpen;
        _inputHash = inputHash;
        _maxInFlight = Math.Max(2, 2 * (workers ?? Environment.ProcessorCount));
        _slots = new SemaphoreSlim(_maxInFlight);
        _block = System.Buffers.ArrayPool<byte>.Shared.Rent(BlockSize);
        _writePump = Task.Run(WritePumpAsync);
        if (inputHash is not null)
        {
            _toHash = Channel.CreateUnbounded<Item>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            _hashPump = Task.Run(HashPumpAsync);
        }
        else
        {
            _hashPump = Task.CompletedTask;
        }
    }

    /// <summary>Input bytes written so far.</summary>
    public long InputCount { get; private set; }

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
        ThrowIfFaulted();
        InputCount += buffer.Length;
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
        ThrowIfFaulted();
        InputCount += buffer.Length;
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

    private void ThrowIfFaulted()
    {
        if (_fault is { } e) throw new IOException($"Writing the compressed layer failed: {e.Message}", e);
    }

    private void ReturnBlock()
    {
        if (_block.Length == 0) return;
        System.Buffers.ArrayPool<byte>.Shared.Return(_block);
        _block = [];
    }

    /// <summary>Hands the filled block to the compressor and the pumps; waits while too many blocks are in flight.</summary>
    private async Task DispatchAsync(CancellationToken ct)
    {
        await _slots.WaitAsync(ct).ConfigureAwait(false);
        ThrowIfFaulted();
        _any = true;
        var block = _block;
        var length = _filled;
        var level = _level;
        var item = new Item(block, length, Task.Run(() => Compress(block, length, level), CancellationToken.None), _toHash is null ? 1 : 2);
        _toWrite.Writer.TryWrite(item);
        _toHash?.Writer.TryWrite(item);
        _block = System.Buffers.ArrayPool<byte>.Shared.Rent(BlockSize);
        _filled = 0;
    }

    /// <summary>One pump finished with the item; the last one frees its input block and its slot.</summary>
    private void Done(Item item)
    {
        if (Interlocked.Decrement(ref item.Refs) != 0) return;
        System.Buffers.ArrayPool<byte>.Shared.Return(item.Block);
        _slots.Release();
    }

    private void Fail(Exception e)
    {
        _fault ??= e;
        _slots.Release(_maxInFlight + 1); // wake the writer so it sees the fault instead of waiting for a slot
    }

    private async Task WritePumpAsync()
    {
        try
        {
            await foreach (var item in _toWrite.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                var (buffer, length) = await item.Compressed.ConfigureAwait(false);
                try
                {
                    if (_fault is null) await _inner.WriteAsync(buffer.AsMemory(0, length)).ConfigureAwait(false);
                }
                finally
                {
                    System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
                }
                Done(item);
            }
        }
        catch (Exception e)
        {
            Fail(e);
            throw;
        }
    }

    private async Task HashPumpAsync()
    {
        try
        {
            await foreach (var item in _toHash!.Reader.ReadAllAsync().ConfigureAwait(false))
            {
                _inputHash!.AppendData(item.Block, 0, item.Length);
                Done(item);
            }
        }
        catch (Exception e)
        {
            Fail(e);
            throw;
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

    /// <summary>Compresses the last (partial) block, writes every pending member in order and waits for both pumps.</summary>
    public async Task CompleteAsync(CancellationToken ct)
    {
        if (_closed) return;
        _closed = true;
        try
        {
            if (_fault is null && (_filled > 0 || !_any)) await DispatchAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _toWrite.Writer.TryComplete();
            _toHash?.Writer.TryComplete();
        }
        try
        {
            await Task.WhenAll(_writePump, _hashPump).ConfigureAwait(false);
        }
        catch
        {
            ThrowIfFaulted();
            throw;
        }
        ThrowIfFaulted();
        await _inner.FlushAsync(ct).ConfigureAwait(false);
    }

    public override async ValueTask DisposeAsync()
    {
        try
        {
            await CompleteAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            ReturnBlock();
            if (!_leaveOpen) await _inner.DisposeAsync().ConfigureAwait(false);
            _slots.Dispose();
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            try
            {
                CompleteAsync(CancellationToken.None).GetAwaiter().GetResult();
            }
            finally
            {
                ReturnBlock();
                if (!_leaveOpen) _inner.Dispose();
                _slots.Dispose();
            }
        }
        base.Dispose(disposing);
    }
}
