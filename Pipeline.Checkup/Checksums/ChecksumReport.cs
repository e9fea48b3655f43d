namespace Pipeline.Checkup.Checksums;

/// <summary>A verified file: its path relative to the root ('/'-separated), size and lowercase hex SHA-256.</summary>
public sealed record FileDigest(string Path, long Size, string Sha256);

/// <summary>
/// Evidence that every regular file under a root matches a checksum manifest, and nothing else is there.
/// <see cref="Files"/> is sorted by ordinal path and always carries SHA-256, whatever the manifest's algorithm.
/// </summary>
public sealed record ChecksumReport(string Algorithm, string ManifestDigest, IReadOnlyList<FileDigest> Files);

/// <summary>The kinds of problem found when verifying a tree, in reporting order.</summary>
public enum ChecksumProblemKind { Symlink, NotRegularFile, ExcludedListed, Missing, Extra, Mismatch }

/// <summary>One problem found by <see cref="ChecksumVerifier"/>.</summary>
public sealed record ChecksumProblem(ChecksumProblemKind Kind, string Path, string Detail)
{
    /// <summary>The stable error code for this kind of problem.</summary>
    public string Code => Kind switch
    {
        ChecksumProblemKind.Symlink => ChecksumErrors.Symlink,
        ChecksumProblemKind.NotRegularFile => ChecksumErrors.NotRegularFile,
        ChecksumProblemKind.ExcludedListed => ChecksumErrors.ExcludedListed,
        ChecksumProblemKind.Missing => ChecksumErrors.Missing,
        ChecksumProblemKind.Extra => ChecksumErrors.Extra,
        _ => ChecksumErrors.Mismatch,
    };
}

/// <summary>
/// Verification of a tree against a manifest failed. <see cref="CheckupException.Code"/> names the first
/// kind of problem (in <see cref="ChecksumProblemKind"/> order); <see cref="Problems"/> lists all of them.
/// </summary>
public sealed class ChecksumVerificationException(string code, string message, IReadOnlyList<ChecksumProblem> problems)
    : CheckupException(code, message)
{
    public IReadOnlyList<ChecksumProblem> Problems { get; } = problems;
}
