using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Checkup.Policies;

/// <summary>What happens when a rule is hit. <see cref="Allow"/> must always be written out and is flagged in the verdict.</summary>
public enum PolicyAction
{
    /// <summary>The delivery is rejected (and kept in quarantine).</summary>
    Reject,
    /// <summary>The delivery is held in quarantine for a person to review.</summary>
    Quarantine,
    /// <summary>The file passes, but the verdict flags it.</summary>
    Allow,
}

/// <summary>
/// A scan policy (<c>pipelines/policies/NAME.yaml</c>): profiles per protection need and the
/// exceptions that waive specific findings. <see cref="Version"/> is the SHA-256 of the file's
/// bytes, so every verdict names exactly which text judged it.
/// </summary>
public sealed record ScanPolicy(string Name, string Version, string? Description, IReadOnlyDictionary<string, ScanProfile> Profiles, IReadOnlyList<FindingException> Exceptions)
{
    /// <summary>The version string of a policy text: <c>sha256:&lt;hex&gt;</c> of its bytes.</summary>
    public static string VersionOf(ReadOnlySpan<byte> content) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(content));

    /// <summary>The profile named <paramref name="name"/>, or <see cref="PolicyErrors.UnknownProfile"/>.</summary>
    public ScanProfile Profile(string name) => Profiles.TryGetValue(name, out var p)
        ? p
        : throw new CheckupException(PolicyErrors.UnknownProfile,
            $"Scan policy '{Name}' has no profile '{name}'; it has: {string.Join(", ", Profiles.Keys.Order(StringComparer.Ordinal))}.");

    /// <summary>
    /// The built-in policy used when a pipeline names none: one profile <c>normal</c> with the strict
    /// defaults of <see cref="ScanProfile"/> (everything unusual rejected) and no exceptions.
    /// </summary>
    public static ScanPolicy BuiltIn { get; } = new("built-in", VersionOf(Encoding.UTF8.GetBytes("built-in strict defaults v1")), "strict defaults",
        new Dictionary<string, ScanProfile> { ["normal"] = new ScanProfile("normal") }, []);
}

/// <summary>One protection profile (e.g. <c>normal</c>, <c>hoch</c>, <c>sehr-hoch</c>). Defaults are the strictest sensible values.</summary>
public sealed record ScanProfile(string Name)
{
    /// <summary>The largest file clamd accepts as a stream (its StreamMaxLength); larger files cannot be scanned.</summary>
    public long ScannerStreamMaxLength { get; init; } = 64L << 20;

    /// <summary>Largest single file (policy limit, independent of clamd).</summary>
    public long MaxFileSize { get; init; } = 64L << 20;

    /// <summary>Largest delivery (sum of all files).</summary>
    public long MaxTotalSize { get; init; } = 2L << 30;

    /// <summary>Most files in one delivery.</summary>
    public int MaxFiles { get; init; } = 10_000;

    /// <summary>Deepest archive nesting (an archive in a delivery is depth 1, an archive inside it depth 2, ...).</summary>
    public int MaxNestingDepth { get; init; } = 4;

    /// <summary>Most bytes one delivered archive may unpack to, all members of all levels counted (measured, never taken from headers).</summary>
    public long MaxUnpackedSize { get; init; } = 1L << 30;

    /// <summary>Highest ratio of unpacked bytes to an archive's own size (judged once more than 1 MiB is unpacked).</summary>
    public double MaxCompressionRatio { get; init; } = 200;

    /// <summary>What exceeding <see cref="MaxFileSize"/>, <see cref="MaxTotalSize"/>, <see cref="MaxFiles"/>, <see cref="MaxNestingDepth"/>,
    /// <see cref="MaxUnpackedSize"/> or <see cref="MaxCompressionRatio"/> means.</summary>
    public PolicyAction OnLimitExceeded { get; init; } = PolicyAction.Reject;

    /// <summary>
    /// Unscannable content: files larger than <see cref="ScannerStreamMaxLength"/> (never scanned) and archive members past clamd's
    /// own limits (MaxFileSize, MaxScanSize, MaxRecursion, MaxFiles: clamd skips them silently). Reject unless explicitly allowed.
    /// </summary>
    public PolicyAction UnscannableLargeFiles { get; init; } = PolicyAction.Reject;

    /// <summary>Files over 2 GiB (beyond what clamd can handle at all) pass only when this is true and <see cref="UnscannableLargeFiles"/> is allow.</summary>
    public bool AllowFilesOver2GiB { get; init; }

    /// <summary>Encrypted or password-protected archives and documents (clamd: Heuristics.Encrypted.*).</summary>
    public PolicyAction EncryptedContent { get; init; } = PolicyAction.Reject;

    /// <summary>Archives the engine cannot inspect (rar, cab, zstd, damaged, encrypted members, unsupported methods): no limit can be vouched for.</summary>
    public PolicyAction UninspectableArchives { get; init; } = PolicyAction.Reject;

    /// <summary>Content clamd cannot parse (Heuristics.Broken.*, Heuristics.Limits.Exceeded.*).</summary>
    public PolicyAction UnparsableContent { get; init; } = PolicyAction.Reject;

    /// <summary>File-type rules, checked in order; every matching rule applies.</summary>
    public IReadOnlyList<FileTypeRule> FileTypeRules { get; init; } = [];

    /// <summary>Lowest acceptable clamd engine version, e.g. 1.0.0 (null: any).</summary>
    public Version? MinEngineVersion { get; init; }

    /// <summary>Oldest acceptable signature database, when clamd reports its date (official databases do; custom-only ones don't).</summary>
    public TimeSpan? MaxDatabaseAge { get; init; }

    /// <summary>Whether <see cref="ScanPolicy.Exceptions"/> may waive findings under this profile.</summary>
    public bool ExceptionsAllowed { get; init; } = true;
}

/// <summary>Denies file types (judged by content) for paths matching any of <see cref="Paths"/>.</summary>
public sealed record FileTypeRule(string Name, IReadOnlyList<PathGlob> Paths, IReadOnlyList<FileType> Deny, PolicyAction Action);

/// <summary>
/// A waiver for one finding: only for this exact file content (SHA-256) and detection name, with a
/// justification, who approved it and until when. Expired exceptions waive nothing and say so.
/// </summary>
public sealed record FindingException(string Sha256, string Detection, string Justification, string ApprovedBy, DateTimeOffset Expires)
{
    public bool IsExpired(DateTimeOffset now) => now >= Expires;
}

/// <summary>Stable error codes of scan policies and verdicts.</summary>
public static class PolicyErrors
{
    /// <summary>A pipeline names a profile the policy does not have.</summary>
    public const string UnknownProfile = "SCAN-POLICY-PROFILE";
    /// <summary>The policy file named by a pipeline does not exist or is invalid.</summary>
    public const string BadPolicy = "SCAN-POLICY-INVALID";
    /// <summary>The delivery has malware (a finding no valid exception waives).</summary>
    public const string Infected = "SCAN-INFECTED";
    /// <summary>The delivery breaks the policy (limits, encrypted or unparsable content, file types) and is rejected.</summary>
    public const string Rejected = "SCAN-REJECTED";
    /// <summary>The delivery is held in quarantine for manual review, as the policy demands.</summary>
    public const string Review = "SCAN-REVIEW";
    /// <summary>At least one file could not be scanned (clamd error); nothing unscanned passes.</summary>
    public const string ScanError = "SCAN-ERROR";
    /// <summary>The scanner does not meet the policy's signature-database requirements.</summary>
    public const string Scanner = "SCAN-SCANNER";
    /// <summary>An archive member unpacks past clamd's MaxFileSize: clamd skips it, so it is unscannable.</summary>
    public const string LimitFileSize = "SCAN-LIMIT-FILESIZE";
    /// <summary>An archive unpacks past clamd's MaxScanSize: clamd stops scanning, the rest is unscannable.</summary>
    public const string LimitScanSize = "SCAN-LIMIT-SCANSIZE";
    /// <summary>Archives nest deeper than clamd's MaxRecursion: the deeper members are unscannable.</summary>
    public const string LimitRecursion = "SCAN-LIMIT-RECURSION";
    /// <summary>An archive has more members than clamd's MaxFiles: the rest are unscannable.</summary>
    public const string LimitFiles = "SCAN-LIMIT-FILES";
    /// <summary>An archive unpacks past the policy's maxUnpackedSize.</summary>
    public const string LimitUnpacked = "SCAN-LIMIT-UNPACKED";
    /// <summary>An archive's compression ratio is over the policy's maxCompressionRatio.</summary>
    public const string LimitRatio = "SCAN-LIMIT-RATIO";
    /// <summary>Archives nest deeper than the policy's maxNestingDepth.</summary>
    public const string LimitNesting = "SCAN-LIMIT-NESTING";
    /// <summary>An archive the engine cannot inspect (format, method, encryption, damage, work caps): no limit can be vouched for.</summary>
    public const string Uninspectable = "SCAN-UNINSPECTABLE";
}
