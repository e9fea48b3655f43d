namespace Pipeline.Checkup.Checksums;

/// <summary>Stable error codes for checksum manifests (parse) and their verification against a tree.</summary>
public static class ChecksumErrors
{
    /// <summary>A line is not <c>&lt;hex&gt;  &lt;name&gt;</c> / <c>&lt;hex&gt; *&lt;name&gt;</c>, or has a bad escape.</summary>
    public const string MalformedLine = "CHK-SUM-001";
    /// <summary>The digest is not hexadecimal or its length does not fit the algorithm.</summary>
    public const string BadDigest = "CHK-SUM-002";
    /// <summary>The same path is listed twice.</summary>
    public const string DuplicatePath = "CHK-SUM-003";
    /// <summary>An absolute path (<c>/x</c>, <c>C:x</c>).</summary>
    public const string AbsolutePath = "CHK-SUM-004";
    /// <summary>A <c>..</c> (or <c>.</c>) path segment.</summary>
    public const string ParentSegment = "CHK-SUM-005";
    /// <summary>A backslash in a path (Windows separator).</summary>
    public const string BackslashPath = "CHK-SUM-006";
    /// <summary>An empty name or an empty path segment (<c>a//b</c>, trailing <c>/</c>).</summary>
    public const string EmptyName = "CHK-SUM-007";
    /// <summary>A NUL or other control character in a name.</summary>
    public const string ControlCharacter = "CHK-SUM-008";
    /// <summary>The manifest lists no file, or its algorithm cannot be determined.</summary>
    public const string EmptyManifest = "CHK-SUM-009";

    /// <summary>A symbolic link in the delivered tree.</summary>
    public const string Symlink = "CHK-SUM-020";
    /// <summary>A FIFO, socket or device in the delivered tree.</summary>
    public const string NotRegularFile = "CHK-SUM-021";
    /// <summary>The manifest lists a path that is excluded from verification (the manifest, <c>.git/</c>, ...).</summary>
    public const string ExcludedListed = "CHK-SUM-022";
    /// <summary>Listed in the manifest but absent from the tree.</summary>
    public const string Missing = "CHK-SUM-023";
    /// <summary>Present in the tree but not listed in the manifest.</summary>
    public const string Extra = "CHK-SUM-024";
    /// <summary>The file's digest differs from the manifest.</summary>
    public const string Mismatch = "CHK-SUM-025";
    /// <summary>The root directory does not exist or cannot be read.</summary>
    public const string RootUnreadable = "CHK-SUM-026";
}
