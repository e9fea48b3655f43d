using System.Text.Json;
using System.Text.Json.Serialization;

namespace Pipeline.Engine.Quarantine;

/// <summary>A person's release of a quarantined delivery after review.</summary>
public sealed record QuarantineRelease(string Approver, string? Note, DateTimeOffset ReleasedAt);

/// <summary>One quarantined delivery as its <c>report.json</c> describes it.</summary>
public sealed record QuarantineEntry(
    Guid DeliveryId,
    string Pipeline,
    string Tag,
    string TagObjectId,
    string Stage,
    string Code,
    string Reason,
    DateTimeOffset QuarantinedAt,
    string Directory,
    QuarantineRelease? Release)
{
    /// <summary>Set when the folder's <c>report.json</c> is missing, empty or unreadable (e.g. the disk filled up while it was written): what is wrong with it.</summary>
    public string? Problem { get; init; }
}

/// <summary>
/// Rejected deliveries, kept read-only under <c>&lt;workDir&gt;/quarantine/&lt;pipeline&gt;/&lt;delivery id&gt;</c>
/// with a <c>report.json</c> (and, when the scan stage got that far, <c>scan-report.json</c>).
/// Nothing in quarantine is ever published. A release by a named approver is written to
/// <c>release.json</c> beside the report (the caller records it in the ledger as well).
/// </summary>
public sealed class QuarantineStore(string workDir, TimeProvider time)
{
    public const string ReportFile = "report.json";
    public const string ReleaseFile = "release.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string Root { get; } = Path.Combine(workDir, "quarantine");

    /// <summary>Moves a delivery's folder into quarantine, writes its report and makes everything read-only. Returns the folder.</summary>
    public string Add(string pipeline, Guid deliveryId, string deliveryWorkDir, string tag, string tagObjectId, string stage, string code, string reason)
    {
        var dir = Path.Combine(Root, pipeline, deliveryId.ToString("N"));
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        Directory.Move(deliveryWorkDir, dir);
        var report = new QuarantineEntry(deliveryId, pipeline, tag, tagObjectId, stage, code, reason, time.GetUtcNow(), dir, null);
        try
        {
            WriteAtomically(Path.Combine(dir, ReportFile), JsonSerializer.SerializeToUtf8Bytes(report with { Directory = "." }, Json));
        }
        finally
        {
            // Read-only even without its report ('quarantine list' shows such a folder as broken).
            MakeReadOnly(new DirectoryInfo(dir));
        }

        return dir;
    }

    /// <summary>
    /// Writes a temporary file beside <paramref name="path"/>, flushes it to the disk and renames it
    /// into place: a reader sees the whole file or none (a full disk fails before the rename).
    /// </summary>
    internal static void WriteAtomically(string path, byte[] bytes)
    {
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: false);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    /// <summary>Every quarantined delivery, newest first.</summary>
    public IReadOnlyList<QuarantineEntry> List()
    {
        if (!Directory.Exists(Root)) return [];
        var list = new List<QuarantineEntry>();
        foreach (var pipelineDir in Directory.EnumerateDirectories(Root))
        foreach (var dir in Directory.EnumerateDirectories(pipelineDir))
        {
            list.Add(Read(dir) ?? Broken(dir));
        }

        return list.OrderByDescending(e => e.QuarantinedAt).ToList();
    }

    /// <summary>The quarantined delivery <paramref name="deliveryId"/>, or <c>QUARANTINE-NOT-FOUND</c>.</summary>
    public QuarantineEntry Get(Guid deliveryId) =>
        List().FirstOrDefault(e => e.DeliveryId == deliveryId)
        ?? throw new PipelineException("QUARANTINE-NOT-FOUND", $"no quarantined delivery {deliveryId} under {Root}; 'pipeline quarantine list' shows them");

    /// <summary>Records that <paramref name="approver"/> released the delivery. A delivery is released once; the files stay read-only as evidence.</summary>
    public QuarantineEntry Release(Guid deliveryId, string approver, string? note)
    {
        if (string.IsNullOrWhiteSpace(approver) || approver.Trim().Length < 2)
            throw new PipelineException("QUARANTINE-APPROVER", "a release needs the full name of the approving person (--approver NAME)");
        var entry = Get(deliveryId);
        if (entry.Release is { } r)
            throw new PipelineException("QUARANTINE-RELEASED", $"delivery {deliveryId} was already released by {r.Approver} at {r.ReleasedAt:O}");
        var release = new QuarantineRelease(approver.Trim(), string.IsNullOrWhiteSpace(note) ? null : note.Trim(), time.GetUtcNow());
        var dir = new DirectoryInfo(entry.Directory);
        dir.UnixFileMode |= UnixFileMode.UserWrite;
        try
        {
            using var fs = new FileStream(Path.Combine(dir.FullName, ReleaseFile), FileMode.CreateNew, FileAccess.Write);
            JsonSerializer.Serialize(fs, release, Json);
        }
        finally
        {
            dir.UnixFileMode &= ~(UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        }

        File.SetUnixFileMode(Path.Combine(dir.FullName, ReleaseFile), UnixFileMode.UserRead | UnixFileMode.GroupRead);
        return entry with { Release = release };
    }

    /// <summary>A quarantine folder whose report cannot be read: still listed, so the security team sees it.</summary>
    private static QuarantineEntry Broken(string dir)
    {
        var report = Path.Combine(dir, ReportFile);
        var problem = !File.Exists(report) ? "report.json is missing"
            : new FileInfo(report).Length == 0 ? "report.json is empty (written when the disk was full?)"
            : "report.json is not readable JSON";
        var id = Guid.TryParseExact(Path.GetFileName(dir), "N", out var g) ? g : Guid.Empty;
        var at = new DateTimeOffset(Directory.GetLastWriteTimeUtc(dir), TimeSpan.Zero);
        return new QuarantineEntry(id, Path.GetFileName(Path.GetDirectoryName(dir)!), "?", "?", "?", "QUARANTINE-BROKEN", problem, at, dir, null) { Problem = problem };
    }

    private static QuarantineEntry? Read(string dir)
    {
        var report = Path.Combine(dir, ReportFile);
        if (!File.Exists(report)) return null;
        try
        {
            var e = JsonSerializer.Deserialize<QuarantineEntry>(File.ReadAllText(report), Json);
            if (e is null) return null;
            var releaseFile = Path.Combine(dir, ReleaseFile);
            var release = File.Exists(releaseFile) ? JsonSerializer.Deserialize<QuarantineRelease>(File.ReadAllText(releaseFile), Json) : null;
            return e with { Directory = dir, Release = release };
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            return null;
        }
    }

    private static void MakeReadOnly(DirectoryInfo dir)
    {
        // Never through a link: a chmod that follows one would change files outside the quarantine.
        foreach (var e in Pipeline.Checkup.Checksums.FileTree.Enumerate(dir.FullName).Where(e => e.LinkTarget is null && e is FileInfo))
            e.UnixFileMode &= ~(UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        foreach (var d in Pipeline.Checkup.Checksums.FileTree.RealDirectories(dir.FullName))
            d.UnixFileMode &= ~(UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
    }
}
