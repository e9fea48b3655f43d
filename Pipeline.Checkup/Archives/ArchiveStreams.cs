namespace Pipeline.Checkup.Archives;

/// <summary>Magic bytes of the containers the inspector reads, and of those clamd unpacks but the inspector cannot.</summary>
public static class ArchiveMagic
{
    /// <summary>Bytes needed to judge a format (tar's magic is at offset 257).</summary>
    public const int HeadLength = 512;

    /// <summary>The readable container format of <paramref name="head"/>, or null.</summary>
    public static ArchiveFormat? Detect(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8) || head.StartsWith("PK\x07\x08"u8)) return ArchiveFormat.Zip;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B])) return ArchiveFormat.Gzip;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C])) return ArchiveFormat.SevenZip;
        if (head.Length >= 4 && head.StartsWith("BZh"u8) && head[3] is >= (byte)'1' and <= (byte)'9') return ArchiveFormat.Bzip2;
        if (head.StartsWith((ReadOnlySpan<byte>)[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])) return ArchiveFormat.Xz;
        if (head.Length >= 262 && head.Slice(257, 5).SequenceEqual("ustar"u8)) return ArchiveFormat.Tar;
        return null;
    }

    /// <summary>
    /// The name of a container clamd may unpack but the inspector cannot read (rar, cab, zstd, arj, lzh),
    /// or null. Its members' sizes are unknown, so no limit can be vouched for.
    /// </summary>
    public static string? Foreign(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("Rar!\x1A\x07"u8)) return "rar";
        if (head.StartsWith("MSCF"u8)) return "cab";
        if (head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD])) return "zstd";
        if (head.StartsWith((ReadOnlySpan<byte>)[0x60, 0xEA])) return "arj";
        if (head.Length >= 7 && head[2] == (byte)'-' && head[3] == (byte)'l' && head[4] == (byte)'h' && head[6] == (byte)'-') return "lzh";
        return null;
    }

    /// <summary>Reads up to <see cref="HeadLength"/> bytes and returns a stream that replays them before the rest.</summary>
    internal static (byte[] Head, Stream Stream) Peek(Stream s)
    {
        var head = new byte[HeadLength];
        var got = 0;
        int n;
        while (got < head.Length && (n = s.Read(head, got, head.Length - got)) > 0) got += n;
        return (head[..got], new ReplayStream(head.AsMemory(0, got), s));
    }
}

/// <summary>Counts every byte read through it and lets the inspection judge the running totals.</summary>
internal sealed class CountingStream(Stream inner, Action<long, long> onRead) : ReadOnlyStream
{
    public long Count { get; private set; }

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        if (n > 0)
        {
            Count += n;
            onRead(n, Count);
        }
        return n;
    }

    /// <summary>Reads to the end, discarding the bytes (they are counted).</summary>
    public void Drain()
    {
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (Read(buffer.AsSpan(0, 64 * 1024)) > 0) { }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}

/// <summary>Replays a prefix, then reads the rest.</summary>
internal sealed class ReplayStream(ReadOnlyMemory<byte> prefix, Stream rest) : ReadOnlyStream
{
    private ReadOnlyMemory<byte> _prefix = prefix;

    public override int Read(Span<byte> buffer)
    {
        if (_prefix.IsEmpty) return rest.Read(buffer);
        var n = Math.Min(buffer.Length, _prefix.Length);
        _prefix.Span[..n].CopyTo(buffer);
        _prefix = _prefix[n..];
        return n;
    }
}

/// <summary>A forward-only stream whose disposal leaves the wrapped stream open (for readers that always close); it knows its position.</summary>
internal sealed class KeepOpenStream(Stream inner) : ReadOnlyStream
{
    private long _read;

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        _read += n;
        return n;
    }
}

/// <summary>Base of the inspector's forward-only read streams.</summary>
internal abstract class ReadOnlyStream : Stream
{
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public abstract override int Read(Span<byte> buffer);
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
