using System.Security.Cryptography;
using System.Text;
using Pipeline.Checkup.Archives;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Checkup.Policies;

/// <summary>How one file came out.</summary>
public enum FileOutcome
{
    /// <summary>Scanned, nothing found, no rule hit.</summary>
    Clean,
    /// <summary>A finding waived by a valid exception.</summary>
    Waived,
    /// <summary>Passes, but only because the policy explicitly allows it (flagged).</summary>
    Allowed,
    /// <summary>Held for manual review.</summary>
    Quarantine,
    /// <summary>Rejected by a policy rule (limits, encrypted, file type, unscannable).</summary>
    Rejected,
    /// <summary>Malware found and not waived.</summary>
    Infected,
    /// <summary>clamd could not scan it.</summary>
    Error,
}

/// <summary>The decision about a whole delivery.</summary>
public enum ScanDecision { Accept, Review, Reject }

/// <summary>
/// One file's verdict: what clamd said, what the policy made of it, and why. <see cref="Code"/> is the stable code of
/// the rule that flagged it (e.g. <c>SCAN-LIMIT-FILESIZE</c>), <see cref="Archive"/> what the engine measured inside
/// it when it is an archive (so the evidence never claims more than clamd read).
/// </summary>
public sealed record FileVerdict(string Path, string? Sha256, long Size, FileType Type, FileOutcome Outcome, string? Detection, string Reason)
{
    public string? Code { get; init; }
    public ArchiveReport? Archive { get; init; }
}

/// <summary>
/// The evidence of one policy scan: which policy (name, version, profile) and which clamd judged
/// which files, every file's verdict and the delivery-wide problems.
/// </summary>
public sealed record ScanVerdict(
    string PolicyName,
    string PolicyVersion,
    string Profile,
    string ClamdVersion,
    ScanDecision Decision,
    IReadOnlyList<FileVerdict> Files,
    IReadOnlyList<string> Problems)
{
    /// <summary>clamd's limits the archives were judged against (read from its configuration).</summary>
    public ClamdLimits? ClamdLimits { get; init; }

    /// <summary>Files that were inspected as archives.</summary>
    public IEnumerable<FileVerdict> Archives => Files.Where(f => f.Archive is not null);

    /// <summary>Files that were flagged in any way (everything but <see cref="FileOutcome.Clean"/>).</summary>
    public IEnumerable<FileVerdict> Findings => Files.Where(f => f.Outcome != FileOutcome.Clean);

    /// <summary>SHA-256 over a canonical text of the verdict (policy, clamd, every file's outcome).</summary>
    public string Digest()
    {
        var sb = new StringBuilder();
        sb.Append("policy ").Append(PolicyName).Append(' ').Append(PolicyVersion).Append(' ').Append(Profile).Append('\n');
        sb.Append("clamd ").Append(ClamdVersion).Append('\n').Append("decision ").Append(Decision).Append('\n');
        if (ClamdLimits is { } l) sb.Append("limits ").Append(l).Append('\n');
        foreach (var p in Problems) sb.Append("problem ").Append(p).Append('\n');
        foreach (var f in Files)
        {
            sb.Append(f.Path).Append(' ').Append(f.Sha256).Append(' ').Append(f.Outcome).Append(' ').Append(f.Detection).Append('\n');
            if (f.Code is not null) sb.Append("  code ").Append(f.Code).Append('\n');
            if (f.Archive is { } a) sb.Append("  archive ").Append(a.Summary()).Append('\n');
        }
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>
    /// Throws <see cref="ScanRejectedException"/> unless the decision is <see cref="ScanDecision.Accept"/>:
    /// code <see cref="PolicyErrors.Infected"/>, <see cref="PolicyErrors.ScanError"/>, the code of the first rejected file's
    /// rule (e.g. <see cref="PolicyErrors.LimitFileSize"/>) or else <see cref="PolicyErrors.Rejected"/>, or <see cref="PolicyErrors.Review"/>,
    /// naming the first files.
    /// </summary>
    public void EnsureAccepted(IReadOnlyDictionary<string, string> evidence)
    {
        if (Decision == ScanDecision.Accept) return;
        var bad = Files.Where(f => f.Outcome is FileOutcome.Infected or FileOutcome.Error or FileOutcome.Rejected or FileOutcome.Quarantine).ToList();
        var code = bad.Any(f => f.Outcome == FileOutcome.Infected) ? PolicyErrors.Infected
            : bad.Any(f => f.Outcome == FileOutcome.Error) ? PolicyErrors.ScanError
            : Decision == ScanDecision.Reject ? bad.FirstOrDefault(f => f.Outcome == FileOutcome.Rejected && f.Code is not null)?.Code ?? PolicyErrors.Rejected
            : PolicyErrors.Review;
        var sb = new StringBuilder(Decision == ScanDecision.Reject
            ? $"the delivery breaks scan policy '{PolicyName}' (profile {Profile}, {PolicyVersion[..Math.Min(19, PolicyVersion.Length)]}..., {ClamdVersion}) and is rejected"
            : $"scan policy '{PolicyName}' (profile {Profile}) holds the delivery for manual review in quarantine");
        foreach (var p in Problems) sb.Append("; ").Append(p);
        foreach (var f in bad.Take(10)) sb.Append("; ").Append(f.Path).Append(": ").Append(f.Reason);
        if (bad.Count > 10) sb.Append("; and ").Append(bad.Count - 10).Append(" more file(s)");
        throw new ScanRejectedException(code, sb.ToString(), this, evidence);
    }
}

/// <summary>A delivery did not pass its scan policy. Carries the verdict and the ledger evidence of the failed scan.</summary>
public sealed class ScanRejectedException(string code, string message, ScanVerdict verdict, IReadOnlyDictionary<string, string> evidence)
    : CheckupException(code, message)
{
    public ScanVerdict Verdict { get; } = verdict;

    /// <summary>What the ledger records for the failed scan stage (policy and clamd versions, findings).</summary>
    public IReadOnlyDictionary<string, string> Evidence { get; } = evidence;
}
