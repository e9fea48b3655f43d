using System.Formats.Tar;
using System.IO.Compression;

namespace Pipeline.Checkup.Policies;

/// <summary>
/// Measures how deeply archives are nested (zip, gzip, tar), because clamd does not report when a
/// file exceeds its MaxRecursion limit (it silently stops descending). Reading stops as soon as the
/// limit is passed. Nested zip entries are copied to a private temporary file (bounded by
/// <c>maxEntryBytes</c>); nothing is held in memory beyond small buffers.
/// </summary>
public static class ArchiveNesting
{
    /// <summary>
    /// Returns the nesting depth of <paramref name="path"/> (0: not an archive, 1: an archive of plain
    /// files, ...), or <c>limit + 1</c> as soon as it is deeper than <paramref name="limit"/>.
    /// Archives that cannot be read count as depth 1 (clamd judges their content).
    /// </summary>
    public static int Measure(string path, int limit, long maxEntryBytes, CancellationToken ct)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.SequentialScan);
        return Depth(fs, limit, maxEntryBytes, 0, ct);
    }

    private static int Depth(Stream s, int limit, long maxEntryBytes, int level, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var head = new byte[FileTypes.HeadLength];
        var type = PeekType(ref s, head);
        if (type is not (FileType.Zip or FileType.Gzip or FileType.Tar)) return 0;
        if (level + 1 > limit) return 1; // one level too deep: stop reading here
        try
        {
            var inner = type switch
            {
                FileType.Zip => ZipDepth(s, limit, maxEntryBytes, level + 1, ct),
                FileType.Gzip => GzipDepth(s, limit, maxEntryBytes, level + 1, ct),
                _ => TarDepth(s, limit, maxEntryBytes, level + 1, ct),
            };
            return 1 + inner;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or FormatException or NotSupportedException)
        {
            return 1;
        }
    }

    private static int GzipDepth(Stream s, int limit, long max, int level, CancellationToken ct)
    {
        using var gz = new GZipStream(s, CompressionMode.Decompress, leaveOpen: true);
        // A gzip wraps one stream; the wrapped content is at the same level when it is a tar (.tar.gz is one archive).
        Stream inner = gz;
        var head = new byte[FileTypes.HeadLength];
        var type = PeekType(ref inner, head);
        if (type == FileType.Tar) return TarDepth(inner, limit, max, level, ct);
        return Depth(inner, limit, max, level, ct);
    }

    private static int TarDepth(Stream s, int limit, long max, int level, CancellationToken ct)
    {
        using var tar = new TarReader(s, leaveOpen: true);
        var deepest = 0;
        while (tar.GetNextEntry() is { } entry)
        {
            ct.ThrowIfCancellationRequested();
            if (entry.DataStream is null || entry.Length == 0) continue;
            var d = NestedDepth(entry.DataStream, entry.Length, limit, max, level, ct);
            deepest = Math.Max(deepest, d);
            if (level + deepest > limit) break;
        }
        return deepest;
    }

    private static int ZipDepth(Stream s, int limit, long max, int level, CancellationToken ct)
    {
        if (!s.CanSeek) return SpoolAndRun(s, long.MaxValue, max, seekable => ZipDepth(seekable, limit, max, level, ct)) ?? 0;
        using var zip = new ZipArchive(s, ZipArchiveMode.Read, leaveOpen: true);
        var deepest = 0;
        foreach (var entry in zip.Entries)
        {
            ct.ThrowIfCancellationRequested();
            if (entry.Length == 0 || entry.FullName.EndsWith('/')) continue;
            using var es = entry.Open();
            var d = NestedDepth(es, entry.Length, limit, max, level, ct);
            deepest = Math.Max(deepest, d);
            if (level + deepest > limit) break;
        }
        return deepest;
    }

    private static int NestedDepth(Stream entry, long length, int limit, long max, int level, CancellationToken ct)
    {
        var head = new byte[FileTypes.HeadLength];
        var type = PeekType(ref entry, head);
        if (type is not (FileType.Zip or FileType.Gzip or FileType.Tar)) return 0;
        if (type == FileType.Zip)
            return SpoolAndRun(entry, length, max, seekable => Depth(seekable, limit, max, level, ct)) ?? 1;
        return Depth(entry, limit, max, level, ct);
    }

    /// <summary>Copies a non-seekable stream into a temporary file (deleted on close) to read it as a zip; null when too large.</summary>
    private static int? SpoolAndRun(Stream s, long length, long max, Func<Stream, int> run)
    {
        if (length > max) return null;
        var tmp = Path.Combine(Path.GetTempPath(), "pipeline-nest-" + Guid.NewGuid().ToString("N"));
        using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 64 * 1024, FileOptions.DeleteOnClose);
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = s.Read(buffer)) > 0)
        {
            total += n;
            if (total > max) return null;
            fs.Write(buffer, 0, n);
        }
        fs.Position = 0;
        return run(fs);
    }

    /// <summary>Reads the head and replaces <paramref name="s"/> with a stream that replays it.</summary>
    private static FileType PeekType(ref Stream s, byte[] head)
    {
        var got = 0;
        int n;
        while (got < head.Length && (n = s.Read(head, got, head.Length - got)) > 0) got += n;
        if (s.CanSeek)
        {
            s.Seek(-got, SeekOrigin.Current);
        }
        else
        {
            s = new ReplayStream(head.AsMemory(0, got), s);
        }
        return FileTypes.Detect(head.AsSpan(0, got));
    }

    private sealed class ReplayStream(ReadOnlyMemory<byte> prefix, Stream rest) : Stream
    {
        private ReadOnlyMemory<byte> _prefix = prefix;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (_prefix.IsEmpty) return rest.Read(buffer);
            var n = Math.Min(buffer.Length, _prefix.Length);
            _prefix.Span[..n].CopyTo(buffer);
            _prefix = _prefix[n..];
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
