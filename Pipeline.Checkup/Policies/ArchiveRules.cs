using Pipeline.Checkup.Archives;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Checkup.Policies;

/// <summary>
/// Judges what the <see cref="ArchiveInspector"/> measured in a file clamd called clean: content past
/// clamd's limits was never read by clamd (unscannable rule), content past the policy's limits breaks
/// the policy (limits rule), content the engine cannot read cannot be vouched for (uninspectable rule).
/// </summary>
internal static class ArchiveRules
{
    /// <summary>The limits of one inspection under <paramref name="profile"/> and clamd's <paramref name="clamd"/>.</summary>
    public static InspectionLimits LimitsFor(ScanProfile profile, ClamdLimits clamd) =>
        new(clamd, profile.MaxUnpackedSize, profile.MaxCompressionRatio);

    /// <summary>
    /// Inspects <paramref name="full"/> when it is an archive and turns the first issue into the file's verdict;
    /// a clean inspection keeps <paramref name="current"/> (clean, or clamd's own limit heuristic) and attaches the measurements.
    /// </summary>
    public static FileVerdict Judge(FileVerdict current, string full, ScanProfile profile, ClamdLimits clamd, TimeProvider time, CancellationToken ct)
    {
        var report = ArchiveInspector.Inspect(full, current.Path, LimitsFor(profile, clamd), time, ct);
        if (report is null) return current;
        var judged = current with { Archive = report };
        if (report.Issues.FirstOrDefault() is { } issue)
        {
            var (code, action, rule) = issue.Kind switch
            {
                ArchiveIssueKind.FileSize => (PolicyErrors.LimitFileSize, profile.UnscannableLargeFiles, "largerThanStreamMaxLength (unscannable content)"),
                ArchiveIssueKind.ScanSize => (PolicyErrors.LimitScanSize, profile.UnscannableLargeFiles, "largerThanStreamMaxLength (unscannable content)"),
                ArchiveIssueKind.Recursion => (PolicyErrors.LimitRecursion, profile.UnscannableLargeFiles, "largerThanStreamMaxLength (unscannable content)"),
                ArchiveIssueKind.Files => (PolicyErrors.LimitFiles, profile.UnscannableLargeFiles, "largerThanStreamMaxLength (unscannable content)"),
                ArchiveIssueKind.Unpacked => (PolicyErrors.LimitUnpacked, profile.OnLimitExceeded, "onExceed"),
                ArchiveIssueKind.Ratio => (PolicyErrors.LimitRatio, profile.OnLimitExceeded, "onExceed"),
                _ => (PolicyErrors.Uninspectable, profile.UninspectableArchives, "uninspectable"),
            };
            var what = issue.Kind is ArchiveIssueKind.FileSize or ArchiveIssueKind.ScanSize or ArchiveIssueKind.Recursion or ArchiveIssueKind.Files
                ? "NOT scanned by clamd although it answered OK"
                : issue.Kind == ArchiveIssueKind.Uninspectable ? "the engine cannot vouch for what clamd read" : "over the policy's limit";
            return judged with
            {
                Outcome = Stricter(current.Outcome, ToOutcome(action)),
                Code = code,
                Reason = $"{code}: '{issue.Member}' {issue.Detail}; {what}; {rule}: {PolicyScanner.Kebab(action)}",
            };
        }

        if (report.Nesting > profile.MaxNestingDepth && current.Outcome == FileOutcome.Clean)
            return judged with
            {
                Outcome = ToOutcome(profile.OnLimitExceeded),
                Code = PolicyErrors.LimitNesting,
                Reason = $"{PolicyErrors.LimitNesting}: archives nested deeper than maxNestingDepth {profile.MaxNestingDepth} ({report.Nesting} levels); onExceed: {PolicyScanner.Kebab(profile.OnLimitExceeded)}",
            };
        return judged;
    }

    /// <summary>The stricter of two outcomes (an inspector finding never softens what clamd's own heuristic decided).</summary>
    private static FileOutcome Stricter(FileOutcome a, FileOutcome b) => Rank(a) >= Rank(b) ? a : b;

    private static int Rank(FileOutcome o) => o switch
    {
        FileOutcome.Rejected or FileOutcome.Infected or FileOutcome.Error => 3,
        FileOutcome.Quarantine => 2,
        FileOutcome.Allowed or FileOutcome.Waived => 1,
        _ => 0,
    };

    private static FileOutcome ToOutcome(PolicyAction a) => a switch
    {
        PolicyAction.Allow => FileOutcome.Allowed,
        PolicyAction.Quarantine => FileOutcome.Quarantine,
        _ => FileOutcome.Rejected,
    };
}
