using System.Collections.Concurrent;
using System.Text;
using Pipeline.Checkup.Checksums;

namespace Pipeline.Checkup.Scanning;

/// <summary>clamd's verdict for one delivered file.</summary>
public sealed record FileScanResult(string Path, ClamdVerdict Verdict, string? Signature, string Detail);

/// <summary>Evidence of a virus scan: the clamd version and one result per file (sorted by ordinal path).</summary>
public sealed record ScanReport(string ClamdVersion, IReadOnlyList<FileScanResult> Files)
{
    /// <summary>True only when every file is <see cref="ClamdVerdict.Clean"/>.</summary>
    public bool IsClean => Files.All(f => f.Verdict == ClamdVerdict.Clean);

    /// <summary>
    /// Throws <see cref="ClamdErrors.Infected"/> when any file is infected (else <see cref="ClamdErrors.ScanError"/>
    /// when any could not be scanned), naming the first files and the count.
    /// </summary>
    public void EnsureClean()
    {
        if (IsClean) return;
        var infected = Files.Where(f => f.Verdict == ClamdVerdict.Infected).ToList();
        var bad = infected.Count > 0 ? infected : Files.Where(f => f.Verdict != ClamdVerdict.Clean).ToList();
        var sb = new StringBuilder(infected.Count > 0
            ? $"{infected.Count} file(s) infected according to {ClamdVersion}:"
            : $"{bad.Count} file(s) could not be scanned by {ClamdVersion}; a file that was not scanned is not accepted:");
        foreach (var f in bad.Take(10)) sb.Append("\n  '").Append(f.Path).Append("': ").Append(f.Signature ?? f.Detail);
        if (bad.Count > 10) sb.Append("\n  ... and ").Append(bad.Count - 10).Append(" more");
        throw new CheckupException(infected.Count > 0 ? ClamdErrors.Infected : ClamdErrors.ScanError, sb.ToString());
    }
}

/// <summary>Scans the files of a delivery with clamd, each streamed once from disk, several at a time.</summary>
public static class DeliveryScanner
{
    /// <summary>
    /// Scans each of <paramref name="relativePaths"/> ('/'-separated, under <paramref name="rootDir"/>).
    /// Infected and unscannable files are results, not exceptions; a <see cref="ClamdException"/> (clamd
    /// unreachable, timeout) aborts the whole scan, since nothing can be concluded.
    /// </summary>
    public static async Task<ScanReport> ScanFilesAsync(string rootDir, IReadOnlyList<string> relativePaths, ClamdClient client,
        int parallelism, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(relativePaths);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        var root = Path.GetFullPath(rootDir);
        foreach (var rel in relativePaths) CheckPath(rel);

        var version = await client.VersionAsync(ct).ConfigureAwait(false);
        var results = new ConcurrentBag<FileScanResult>();
        await Parallel.ForEachAsync(relativePaths, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = ct },
            async (rel, token) =>
            {
                var full = Path.Combine(root, rel);
                var kind = FileKindProbe.Probe(full);
                if (kind != FileKind.Regular)
                    throw new CheckupException(ClamdErrors.BadFile, $"'{rel}' is {(kind == FileKind.Missing ? "missing" : "not a regular file")}; it cannot be scanned.");
                var stream = new FileStream(full, new FileStreamOptions
                {
                    Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, BufferSize = 0,
                    Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
                });
                await using (stream.ConfigureAwait(false))
                {
                    var r = await client.ScanAsync(stream, token).ConfigureAwait(false);
                    results.Add(new FileScanResult(rel, r.Verdict, r.Signature, r.RawReply));
                }
            }).ConfigureAwait(false);
        return new ScanReport(version, results.OrderBy(r => r.Path, StringComparer.Ordinal).ToList());
    }

    private static void CheckPath(string rel)
    {
        if (string.IsNullOrEmpty(rel) || rel[0] == '/' || rel.Contains('\\') || rel.Contains('\0')
            || rel.Split('/').Any(s => s is "" or "." or ".."))
            throw new CheckupException(ClamdErrors.BadFile, $"'{rel}' is not a safe relative path under the delivery root.");
    }
}
