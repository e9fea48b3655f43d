using System.Globalization;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Checkup.Archives;

/// <summary>Containers the inspector can read (judged by magic bytes, never by name). jar, war, nupkg, apk are zip.</summary>
public enum ArchiveFormat { Zip, Tar, Gzip, Bzip2, Xz, SevenZip }

/// <summary>
/// One member as really unpacked: <paramref name="Path"/> is <c>outer!inner/path</c> (one <c>!</c> per level),
/// <paramref name="Size"/> the bytes actually decompressed (never a header's claim), <paramref name="Level"/> the
/// archive level clamd scans it at (members of the delivered file are level 1; a gzip's payload is one level too).
/// </summary>
public sealed record ArchiveMember(string Path, long Size, int Level);

/// <summary>Why (part of) an archive cannot be vouched for.</summary>
public enum ArchiveIssueKind
{
    /// <summary>A member unpacks past clamd's MaxFileSize: clamd skips it silently.</summary>
    FileSize,
    /// <summary>All members together unpack past clamd's MaxScanSize: clamd stops scanning.</summary>
    ScanSize,
    /// <summary>Archives nest deeper than clamd's MaxRecursion: clamd does not descend.</summary>
    Recursion,
    /// <summary>More members than clamd's MaxFiles: clamd stops scanning.</summary>
    Files,
    /// <summary>More unpacked bytes than the policy's maxUnpackedSize.</summary>
    Unpacked,
    /// <summary>A higher compression ratio than the policy's maxCompressionRatio.</summary>
    Ratio,
    /// <summary>The inspector cannot read it (format, method, encryption, damage, its own work caps), so it cannot vouch for what clamd read.</summary>
    Uninspectable,
}

/// <summary>One finding of the inspector: which member, which limit, and what was measured.</summary>
public sealed record ArchiveIssue(ArchiveIssueKind Kind, string Member, string Detail);

/// <summary>Limits for one inspection: clamd's (what it will read) and the policy's, plus hard caps on the inspector's own work.</summary>
/// <param name="Clamd">clamd's effective limits, read from its configuration.</param>
/// <param name="MaxUnpackedSize">Policy: most bytes all members may unpack to.</param>
/// <param name="MaxCompressionRatio">Policy: highest ratio of unpacked bytes to the file's size (applies once more than <see cref="RatioFloor"/> bytes are unpacked).</param>
public sealed record InspectionLimits(ClamdLimits Clamd, long MaxUnpackedSize, double MaxCompressionRatio)
{
    /// <summary>Below this many unpacked bytes the ratio is not judged (a tiny file of zeros is no bomb).</summary>
    public long RatioFloor { get; init; } = 1L << 20;

    /// <summary>Hard cap: the inspector never decompresses more than this, whatever the limits say.</summary>
    public long MaxWorkBytes { get; init; } = 4L << 30;

    /// <summary>Hard cap on members (all levels).</summary>
    public int MaxMembers { get; init; } = 100_000;

    /// <summary>Hard cap on levels.</summary>
    public int MaxLevels { get; init; } = 32;

    /// <summary>Hard cap on wall time per file.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>A nested 7z must be read with random access: it is held in memory up to this size, else it is uninspectable.</summary>
    public long MaxBufferedBytes { get; init; } = 64L << 20;
}

/// <summary>
/// What the inspector found in one delivered file: every member it unpacked (path, real size, level),
/// the totals, and the issues. <see cref="DeepestLevel"/> counts levels as clamd does (a gzip's payload is a
/// level of its own); <see cref="Nesting"/> counts archives in archives as a policy does (a .tar.gz is one
/// archive, a zip holding it makes two). <see cref="Complete"/> is false when it stopped early (an issue ends
/// the inspection: the file is then not scannable as a whole anyway).
/// </summary>
public sealed record ArchiveReport(
    string Path,
    string Format,
    long PackedSize,
    IReadOnlyList<ArchiveMember> Members,
    long TotalUnpacked,
    int DeepestLevel,
    int Nesting,
    IReadOnlyList<ArchiveIssue> Issues,
    bool Complete)
{
    /// <summary>Members counted (files at every level; a compressed stream's payload counts as one).</summary>
    public int MemberCount => Members.Count;

    /// <summary>Unpacked bytes per packed byte of the delivered file.</summary>
    public double Ratio => (double)TotalUnpacked / Math.Max(1, PackedSize);

    /// <summary>True when nothing in the file is beyond what clamd reads or the policy allows.</summary>
    public bool IsClean => Issues.Count == 0 && Complete;

    /// <summary>One line for evidence and logs.</summary>
    public string Summary() => string.Create(CultureInfo.InvariantCulture,
        $"{Format}: {MemberCount} member(s), {TotalUnpacked} bytes unpacked from {PackedSize} (ratio {Ratio:0.#}), deepest level {DeepestLevel}{(Complete ? "" : ", inspection stopped early")}");
}
