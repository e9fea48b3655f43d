using System.Globalization;
using System.IO.Compression;
using SharpCompress.Archives.SevenZip;
using SharpCompress.Compressors.BZip2;
using SharpCompress.Compressors.Xz;
using SharpCompress.Readers;
using SharpCompress.Readers.Zip;
using FormatsTar = System.Formats.Tar;

namespace Pipeline.Checkup.Archives;

/// <summary>
/// Reads an archive the way clamd would unpack it, without writing anything to disk: every member
/// of every level (zip and its kin, tar, gzip, bzip2, xz, 7z; nested) is decompressed into a counter,
/// so sizes are the bytes really produced, never a header's claim. It stops at the first limit passed:
/// clamd's (a member past MaxFileSize, the total past MaxScanSize, deeper than MaxRecursion, more than
/// MaxFiles: clamd skips such content and may still answer OK), the policy's (unpacked size, ratio) or
/// its own hard caps (bytes, members, levels, time), so a bomb costs at most the smallest limit.
/// </summary>
public static class ArchiveInspector
{
    /// <summary>
    /// Inspects <paramref name="file"/>, naming members <c>{displayName}!inner/path</c>. Returns null when
    /// the file is no container at all; a container of a format the inspector cannot read is reported
    /// with an <see cref="ArchiveIssueKind.Uninspectable"/> issue.
    /// </summary>
    public static ArchiveReport? Inspect(string file, string displayName, InspectionLimits limits, TimeProvider time, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(time);
        using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.SequentialScan);
        var head = new byte[ArchiveMagic.HeadLength];
        var got = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        fs.Position = 0;
        var format = ArchiveMagic.Detect(head.AsSpan(0, got));
        var run = new Run(limits, fs.Length, time, ct);
        if (format is null)
        {
            if (ArchiveMagic.Foreign(head.AsSpan(0, got)) is not { } foreign) return null;
            run.Issues.Add(Run.ForeignIssue(displayName, foreign));
            return run.Report(displayName, foreign, complete: false);
        }

        var complete = true;
        try
        {
            run.Container(fs, format.Value, displayName, 0, 0);
        }
        catch (StopInspection stop)
        {
            run.Issues.Add(stop.Issue);
            complete = false;
        }

        return run.Report(displayName, Name(format.Value), complete);
    }

    /// <summary>The lowercase name of a format, as verdicts show it.</summary>
    public static string Name(ArchiveFormat f) => f == ArchiveFormat.SevenZip ? "7z" : f.ToString().ToLowerInvariant();

    /// <summary>Ends the inspection at the first limit passed.</summary>
    private sealed class StopInspection(ArchiveIssue issue) : Exception(issue.Detail)
    {
        public ArchiveIssue Issue { get; } = issue;
    }

    private sealed class Run(InspectionLimits limits, long packed, TimeProvider time, CancellationToken ct)
    {
        private readonly long _started = time.GetTimestamp();
        private readonly long _maxFileSize = Unlimited(limits.Clamd.MaxFileSize);
        private readonly long _maxScanSize = Unlimited(limits.Clamd.MaxScanSize);
        private readonly int _maxFiles = limits.Clamd.MaxFiles <= 0 ? int.MaxValue : limits.Clamd.MaxFiles;
        private readonly int _maxRecursion = limits.Clamd.MaxRecursion <= 0 ? int.MaxValue : limits.Clamd.MaxRecursion;
        public List<ArchiveMember> Members { get; } = [];
        public List<ArchiveIssue> Issues { get; } = [];
        private long _total;
        private int _deepest;
        private int _nesting;

        private static long Unlimited(long v) => v <= 0 ? long.MaxValue : v;

        public ArchiveReport Report(string path, string format, bool complete) =>
            new(path, format, packed, Members, _total, _deepest, _nesting, Issues, complete);

        public static ArchiveIssue ForeignIssue(string member, string format) => new(ArchiveIssueKind.Uninspectable, member,
            $"{format} content, which clamd may unpack but this engine cannot read: no limit can be vouched for");

        private string Src => limits.Clamd.Source;

        /// <summary>Walks the members of a container whose members are at <paramref name="level"/> + 1.</summary>
        public void Container(Stream s, ArchiveFormat format, string prefix, int level, int nest)
        {
            try
            {
                switch (format)
                {
                    case ArchiveFormat.Zip: Zip(s, prefix, level, nest); break;
                    case ArchiveFormat.Tar: Tar(s, prefix, level, nest); break;
                    case ArchiveFormat.Gzip:
                        using (var gz = new GZipStream(s, CompressionMode.Decompress, leaveOpen: true)) Member(gz, prefix + "!(gzip)", level + 1, nest + 1, prefix, payload: true);
                        break;
                    case ArchiveFormat.Bzip2:
                        using (var bz = BZip2Stream.Create(new KeepOpenStream(s), SharpCompress.Compressors.CompressionMode.Decompress, true, true, false))
                            Member(bz, prefix + "!(bzip2)", level + 1, nest + 1, prefix, payload: true);
                        break;
                    case ArchiveFormat.Xz:
                        using (var xz = new XZStream(new KeepOpenStream(s))) Member(xz, prefix + "!(xz)", level + 1, nest + 1, prefix, payload: true);
                        break;
                    case ArchiveFormat.SevenZip: SevenZip(s, prefix, level, nest); break;
                }
            }
            catch (Exception e) when (e is not StopInspection and not OperationCanceledException)
            {
                throw Stop(ArchiveIssueKind.Uninspectable, prefix,
                    $"cannot be read to the end as {Name(format)} ({e.GetType().Name}: {e.Message}); damaged or crafted content cannot be vouched for");
            }
        }

        private void Zip(Stream s, string prefix, int level, int nest)
        {
            // clamd reads a zip by its central directory; the walk below follows the local headers. Where the file
            // allows random access, a member the directory lists but the walk does not reach cannot be vouched for.
            var listed = s.CanSeek ? CentralDirectory(s) : null;
            var walked = new HashSet<string>(StringComparer.Ordinal);

            // Forward-only over the local headers (also inside a non-seekable parent); every member is inflated.
            using var reader = ZipReader.OpenReader(s, new ReaderOptions { LeaveStreamOpen = true });
            while (reader.MoveToNextEntry())
            {
                ct.ThrowIfCancellationRequested();
                var e = reader.Entry;
                if (e.IsDirectory) continue;
                walked.Add(e.Key ?? "");
                var path = prefix + "!" + e.Key;
                if (e.IsEncrypted) throw Stop(ArchiveIssueKind.Uninspectable, path, "encrypted: its content cannot be read");
                using var es = reader.OpenEntryStream();
                Member(es, path, level + 1, nest + 1, path, payload: false);
            }

            if (listed?.FirstOrDefault(n => !walked.Contains(n)) is { } hidden)
                throw Stop(ArchiveIssueKind.Uninspectable, prefix + "!" + hidden,
                    "is listed in the zip's central directory but has no local entry the engine could read; a crafted zip cannot be vouched for");
        }

        /// <summary>The file members named by a seekable zip's central directory; the stream is put back at its start.</summary>
        private static List<string> CentralDirectory(Stream s)
        {
            var start = s.Position;
            List<string> names;
            using (var zip = new ZipArchive(s, ZipArchiveMode.Read, leaveOpen: true))
                names = zip.Entries.Where(e => !e.FullName.EndsWith('/')).Select(e => e.FullName).ToList();
            s.Position = start;
            return names;
        }

        private void Tar(Stream s, string prefix, int level, int nest)
        {
            using var reader = new FormatsTar.TarReader(s, leaveOpen: true);
            while (reader.GetNextEntry() is { } e)
            {
                ct.ThrowIfCancellationRequested();
                if (e.EntryType is not (FormatsTar.TarEntryType.RegularFile or FormatsTar.TarEntryType.V7RegularFile or FormatsTar.TarEntryType.ContiguousFile))
                    continue;
                var path = prefix + "!" + e.Name;
                Member(e.DataStream ?? Stream.Null, path, level + 1, nest + 1, path, payload: false);
            }
        }

        private void SevenZip(Stream s, string prefix, int level, int nest)
        {
            // 7z needs random access: the delivered file has it; a nested one is held in memory, bounded.
            Stream seekable = s;
            MemoryStream? buffered = null;
            if (!s.CanSeek)
            {
                buffered = new MemoryStream();
                var buffer = new byte[64 * 1024];
                int n;
                while ((n = s.Read(buffer)) > 0)
                {
                    if (buffered.Length + n > limits.MaxBufferedBytes)
                        throw Stop(ArchiveIssueKind.Uninspectable, prefix, $"a nested 7z archive larger than {limits.MaxBufferedBytes} bytes is not inspected (7z needs random access)");
                    buffered.Write(buffer, 0, n);
                }
                buffered.Position = 0;
                seekable = buffered;
            }

            using (buffered)
            using (var archive = SevenZipArchive.OpenArchive(seekable, new ReaderOptions { LeaveStreamOpen = true }))
            using (var reader = archive.ExtractAllEntries())
            {
                while (reader.MoveToNextEntry())
                {
                    ct.ThrowIfCancellationRequested();
                    var e = reader.Entry;
                    if (e.IsDirectory) continue;
                    var path = prefix + "!" + e.Key;
                    if (e.IsEncrypted) throw Stop(ArchiveIssueKind.Uninspectable, path, "encrypted: its content cannot be read");
                    using var es = reader.OpenEntryStream();
                    Member(es, path, level + 1, nest + 1, path, payload: false);
                }
            }
        }

        /// <summary>Counts one member's bytes to the end; descends when it is a container itself.</summary>
        private void Member(Stream content, string path, int level, int nest, string childPrefix, bool payload)
        {
            ct.ThrowIfCancellationRequested();
            CheckTime(path);
            // Measured with clamd 1.4.6: with MaxRecursion 2, a member of a zip in a zip (level 2) is not read.
            if (level >= _maxRecursion)
                throw Stop(ArchiveIssueKind.Recursion, path,
                    $"is at archive level {level}, where clamd stops descending (MaxRecursion {limits.Clamd.MaxRecursion} from {Src}): clamd does not read it");
            if (level > limits.MaxLevels)
                throw Stop(ArchiveIssueKind.Uninspectable, path, $"archives nested more than {limits.MaxLevels} levels deep are not inspected");
            if (Members.Count + 1 > _maxFiles)
                throw Stop(ArchiveIssueKind.Files, path,
                    $"is member number {Members.Count + 1}, past clamd's MaxFiles {limits.Clamd.MaxFiles} (from {Src}): clamd stops scanning before it");
            if (Members.Count + 1 > limits.MaxMembers)
                throw Stop(ArchiveIssueKind.Uninspectable, path, $"more than {limits.MaxMembers} members are not inspected");

            _deepest = Math.Max(_deepest, level);
            _nesting = Math.Max(_nesting, nest);
            var counter = new CountingStream(content, (n, size) => Counted(path, n, size));
            var member = new ArchiveMember(path, 0, level);
            Members.Add(member);
            var index = Members.Count - 1;
            try
            {
                var (head, replay) = ArchiveMagic.Peek(counter);
                if (ArchiveMagic.Detect(head) is { } inner) Container(replay, inner, childPrefix, level, payload ? nest - 1 : nest);
                else if (ArchiveMagic.Foreign(head) is { } foreign) throw Stop(ForeignIssue(path, foreign));
                counter.Drain();
            }
            finally
            {
                Members[index] = member with { Size = counter.Count };
            }

            // A member larger than MaxFileSize stops in Counted; one exactly at it is read by clamd.
        }

        private void Counted(string path, long n, long size)
        {
            _total += n;
            if (size > _maxFileSize)
                throw Stop(ArchiveIssueKind.FileSize, path, string.Create(CultureInfo.InvariantCulture,
                    $"unpacks to more than {limits.Clamd.MaxFileSize} bytes, past clamd's MaxFileSize (from {Src}): clamd skips it and still answers OK"));
            if (_total > _maxScanSize)
                throw Stop(ArchiveIssueKind.ScanSize, path, string.Create(CultureInfo.InvariantCulture,
                    $"brings the unpacked total past {limits.Clamd.MaxScanSize} bytes, clamd's MaxScanSize (from {Src}): clamd stops scanning there"));
            if (_total > limits.MaxUnpackedSize)
                throw Stop(ArchiveIssueKind.Unpacked, path, string.Create(CultureInfo.InvariantCulture,
                    $"brings the unpacked total past the policy's maxUnpackedSize of {limits.MaxUnpackedSize} bytes"));
            if (_total > limits.RatioFloor && _total > limits.MaxCompressionRatio * Math.Max(1, packed))
                throw Stop(ArchiveIssueKind.Ratio, path, string.Create(CultureInfo.InvariantCulture,
                    $"brings the unpacked total to {_total} bytes from {packed} packed, a ratio over the policy's maxCompressionRatio of {limits.MaxCompressionRatio}"));
            if (_total > limits.MaxWorkBytes)
                throw Stop(ArchiveIssueKind.Uninspectable, path, $"the inspector stops after {limits.MaxWorkBytes} unpacked bytes");
            CheckTime(path);
        }

        private void CheckTime(string path)
        {
            ct.ThrowIfCancellationRequested();
            if (time.GetElapsedTime(_started) > limits.Timeout)
                throw Stop(ArchiveIssueKind.Uninspectable, path, $"inspection took longer than {limits.Timeout.TotalSeconds:0} s and was stopped");
        }

        private static StopInspection Stop(ArchiveIssueKind kind, string member, string detail) => Stop(new ArchiveIssue(kind, member, detail));

        private static StopInspection Stop(ArchiveIssue issue) => new(issue);
    }
}
