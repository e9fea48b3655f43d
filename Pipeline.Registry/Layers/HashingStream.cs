using System.Security.Cryptography;

namespace Pipeline.Registry.Layers;

/// <summary>
/// A write-through (or read-through) stream that hashes and counts every byte passing through it.
/// Used to compute diffID and digest in one pass, and to verify blobs while streaming.
/// </summary>
internal sealed class HashingStream : Stream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly IncrementalHash _hash;
    private readonly long _maxBytes;

    public HashingStream(Stream inner, IncrementalHash hash, bool leaveOpen, long maxBytes = long.MaxValue)
    {
        _inner = inner;
        _hash = hash;
        _leaveOpen = leaveOpen;
        _maxBytes = maxBytes;
    }

    /// <summary>Bytes seen so far.</summary>
    public long Count { get; private set; }

    private byte[]? _final;

    /// <summary>Finishes the hash (after the last byte); later calls return the same value, also after disposal.</summary>
    public byte[] GetHash() => _final ??= _hash.GetHashAndReset();

    private void Account(ReadOnlySpan<byte> data)
    {
        if (_final is not null) throw new InvalidOperationException("The hash was already finished.");
        Count += data.Length;
        if (Count > _maxBytes)
            throw new RegistryException("REG-BLOB-003", $"Blob exceeds the size limit of {_maxBytes} bytes.");
        _hash.AppendData(data);
    }

    public override bool CanRead => _inner.CanRead;
    public override bool CanSeek => false;
    public override bool CanWrite => _inner.CanWrite;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Count; set => throw new NotSupportedException(); }
    public override void Flush() => _inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = _inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        Account(buffer);
        _inner.Write(buffer);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Account(buffer.Span);
        await _inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (!_leaveOpen) _inner.Dispose();
            _final ??= _hash.GetHashAndReset();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}
