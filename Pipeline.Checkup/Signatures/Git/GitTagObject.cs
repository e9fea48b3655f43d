using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Checkup.Signatures.Git;

/// <summary>Stable error codes for git tag objects.</summary>
public static class GitTagErrors
{
    /// <summary>The rebuilt tag object does not hash to the expected tag id: its split cannot be trusted.</summary>
    public const string IdMismatch = "CHK-GIT-001";
    /// <summary>The bytes are not a well-formed tag object (headers, separator).</summary>
    public const string Malformed = "CHK-GIT-002";
    /// <summary>The tag carries a signature format this pipeline does not verify (X.509/CMS).</summary>
    public const string UnsupportedSignature = "CHK-GIT-003";
    /// <summary>The signature block is not a complete armoured block.</summary>
    public const string MalformedSignature = "CHK-GIT-004";
}

/// <summary>The kind of signature appended to a git tag message.</summary>
public enum GitSignatureKind { None, Ssh, OpenPgp }

/// <summary>
/// A tag object split the way git splits it for <c>git verify-tag</c>: <see cref="Payload"/> is the
/// signed bytes (headers, blank line, message up to the signature), <see cref="Signature"/> the armoured block.
/// </summary>
public sealed record GitSignedPayload(GitSignatureKind Kind, byte[] Payload, byte[] Signature);

/// <summary>
/// Raw git tag objects: rebuild them byte-exactly from their fields (LibGit2Sharp has no tag-signature
/// API), compute their object id, check it against the id the repository reports, and split the signature
/// off. Always call <see cref="Verify"/> before trusting <see cref="Split"/>.
/// </summary>
public static class GitTagObject
{
    private static readonly (string Prefix, GitSignatureKind Kind)[] SignatureStarts =
    [
        ("-----BEGIN PGP SIGNATURE-----", GitSignatureKind.OpenPgp),
        ("-----BEGIN PGP MESSAGE-----", GitSignatureKind.OpenPgp),
        ("-----BEGIN SSH SIGNATURE-----", GitSignatureKind.Ssh),
        ("-----BEGIN SIGNED MESSAGE-----", GitSignatureKind.None), // X.509 (gpgsm): unsupported
    ];

    /// <summary>
    /// Rebuilds the raw tag object: <c>object &lt;id&gt;\ntype &lt;t&gt;\ntag &lt;name&gt;\ntagger &lt;...&gt;\n\n&lt;message&gt;</c>.
    /// <paramref name="message"/> is the full message as stored, signature block included.
    /// </summary>
    public static byte[] Build(string targetId, string targetType, string tagName, string? tagger, string message)
    {
        ArgumentNullException.ThrowIfNull(message);
        CheckHeaderValue(targetId, "object");
        CheckHeaderValue(targetType, "type");
        CheckHeaderValue(tagName, "tag");
        if (tagger is not null) CheckHeaderValue(tagger, "tagger");
        var sb = new StringBuilder();
        sb.Append("object ").Append(targetId).Append('\n')
          .Append("type ").Append(targetType).Append('\n')
          .Append("tag ").Append(tagName).Append('\n');
        if (tagger is not null) sb.Append("tagger ").Append(tagger).Append('\n');
        sb.Append('\n').Append(message);
        try
        {
            return new UTF8Encoding(false, true).GetBytes(sb.ToString());
        }
        catch (EncoderFallbackException)
        {
            throw new CheckupException(GitTagErrors.Malformed, "The tag's fields contain text that is not valid Unicode.");
        }
    }

    /// <summary>Formats a tagger/committer identity as git stores it: <c>Name &lt;email&gt; 1700000000 +0100</c>.</summary>
    public static string FormatIdentity(string name, string email, DateTimeOffset when)
    {
        var offset = when.Offset;
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        var abs = offset.Duration();
        return string.Create(CultureInfo.InvariantCulture,
            $"{name} <{email}> {when.ToUnixTimeSeconds()} {sign}{abs.Hours:D2}{abs.Minutes:D2}");
    }

    /// <summary>The object id of a raw tag: lowercase hex SHA-1 of <c>tag &lt;len&gt;\0&lt;raw&gt;</c>.</summary>
    public static string ComputeId(byte[] raw) => ComputeId(raw, sha256: false);

    private static string ComputeId(byte[] raw, bool sha256)
    {
        ArgumentNullException.ThrowIfNull(raw);
        using var h = IncrementalHash.CreateHash(sha256 ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1);
        h.AppendData(Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"tag {raw.Length}\0")));
        h.AppendData(raw);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>
    /// Throws <see cref="GitTagErrors.IdMismatch"/> unless <paramref name="raw"/> hashes to
    /// <paramref name="expectedId"/> (40 hex digits: SHA-1 repository; 64: SHA-256 repository).
    /// </summary>
    public static void Verify(byte[] raw, string expectedId)
    {
        ArgumentNullException.ThrowIfNull(expectedId);
        var sha256 = expectedId.Length switch
        {
            40 => false,
            64 => true,
            _ => throw new CheckupException(GitTagErrors.IdMismatch, $"'{expectedId}' is not a git object id (40 or 64 hex digits)."),
        };
        var actual = ComputeId(raw, sha256);
        if (!string.Equals(actual, expectedId, StringComparison.OrdinalIgnoreCase))
            throw new CheckupException(GitTagErrors.IdMismatch,
                $"The tag object rebuilt from its fields hashes to {actual}, not to the tag id {expectedId.ToLowerInvariant()}; " +
                "the tag has content the rebuild does not reproduce, so its signature cannot be checked. Ask the supplier to re-create the tag with a standard git client.");
    }

    /// <summary>
    /// Splits a raw tag at the last line starting with a signature header (as git does). Validates the
    /// object headers and that the signature is one complete armoured block at the end.
    /// </summary>
    public static GitSignedPayload Split(byte[] raw)
    {
        ArgumentNullException.ThrowIfNull(raw);
        ValidateHeaders(raw);

        var match = -1;
        var matchKind = GitSignatureKind.None;
        var matchPrefix = "";
        for (var pos = 0; pos < raw.Length;)
        {
            foreach (var (prefix, kind) in SignatureStarts)
            {
                if (StartsWithAscii(raw, pos, prefix))
                {
                    match = pos;
                    matchKind = kind;
                    matchPrefix = prefix;
                }
            }
            var eol = Array.IndexOf(raw, (byte)'\n', pos);
            pos = eol < 0 ? raw.Length : eol + 1;
        }

        if (match < 0) return new GitSignedPayload(GitSignatureKind.None, raw.ToArray(), []);
        if (matchKind == GitSignatureKind.None)
            throw new CheckupException(GitTagErrors.UnsupportedSignature,
                "The tag is signed with X.509 (gpgsm), which this pipeline does not verify; ask for an SSH or OpenPGP signed tag.");

        var signature = raw[match..];
        var endLine = matchPrefix.Replace("BEGIN", "END", StringComparison.Ordinal).Replace("PGP MESSAGE", "PGP SIGNATURE", StringComparison.Ordinal);
        if (matchPrefix.Contains("PGP MESSAGE", StringComparison.Ordinal)) endLine = "-----END PGP MESSAGE-----";
        var text = Encoding.ASCII.GetString(signature);
        var trimmed = text.TrimEnd('\n');
        if (text.Length - trimmed.Length > 1 || !trimmed.EndsWith("\n" + endLine, StringComparison.Ordinal)
            || signature.Any(b => b > 0x7e || (b < 0x20 && b != (byte)'\n' && b != (byte)'\r')))
            throw new CheckupException(GitTagErrors.MalformedSignature,
                $"The tag's signature block does not end with '{endLine}' or contains non-ASCII bytes.");
        return new GitSignedPayload(matchKind, raw[..match], signature);
    }

    private static void ValidateHeaders(byte[] raw)
    {
        var blank = IndexOf(raw, "\n\n"u8);
        if (blank < 0)
            throw new CheckupException(GitTagErrors.Malformed, "The tag object has no blank line between headers and message.");
        string header;
        try
        {
            header = new UTF8Encoding(false, true).GetString(raw, 0, blank);
        }
        catch (DecoderFallbackException)
        {
            throw new CheckupException(GitTagErrors.Malformed, "The tag object's headers are not valid UTF-8.");
        }
        var lines = header.Split('\n');
        if (lines.Length < 3
            || !lines[0].StartsWith("object ", StringComparison.Ordinal) || !IsObjectId(lines[0][7..])
            || lines[1] is not ("type commit" or "type tree" or "type blob" or "type tag")
            || !lines[2].StartsWith("tag ", StringComparison.Ordinal) || lines[2].Length == 4
            || lines.Skip(3).Any(l => !l.StartsWith("tagger ", StringComparison.Ordinal)) || lines.Length > 4)
            throw new CheckupException(GitTagErrors.Malformed,
                "The tag object's headers are not 'object', 'type', 'tag' and an optional 'tagger', in that order.");
    }

    private static bool IsObjectId(string s) => s.Length is 40 or 64 && s.All(c => char.IsAsciiHexDigitLower(c) || char.IsAsciiDigit(c));

    private static void CheckHeaderValue(string value, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        if (value.Length == 0 || value.Contains('\n') || value.Contains('\0'))
            throw new CheckupException(GitTagErrors.Malformed, $"The tag's '{name}' field is empty or contains a newline or NUL.");
    }

    private static bool StartsWithAscii(byte[] raw, int pos, string prefix)
    {
        if (raw.Length - pos < prefix.Length) return false;
        for (var i = 0; i < prefix.Length; i++)
            if (raw[pos + i] != prefix[i]) return false;
        return true;
    }

    private static int IndexOf(byte[] raw, ReadOnlySpan<byte> needle) => raw.AsSpan().IndexOf(needle);
}
