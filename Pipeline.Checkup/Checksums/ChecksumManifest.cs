using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Checkup.Checksums;

/// <summary>One line of a checksum manifest: a normalized relative path ('/'-separated) and its lowercase hex digest.</summary>
public sealed record ChecksumEntry(string Path, string Digest, bool BinaryMode, int LineNumber);

/// <summary>
/// A GNU coreutils checksum manifest (<c>sha256sum</c>/<c>sha512sum</c> output), validated when parsed.
/// Accepts <c>&lt;hex&gt;  &lt;name&gt;</c> (text mode) and <c>&lt;hex&gt; *&lt;name&gt;</c> (binary mode);
/// a line starting with <c>\</c> has <c>\\</c> and <c>\n</c> escapes in its name. Empty lines and
/// <c>#</c> comment lines are skipped, a trailing CR (CRLF files) is dropped and a leading <c>./</c> is
/// removed from names. Paths must be relative, without <c>..</c>/<c>.</c>/empty segments, backslashes or
/// control characters, and unique. The algorithm comes from the file name (SHA256SUMS, SHA512SUMS) or,
/// otherwise, from the digest length (64 or 128 hex digits), and must be the same for every line.
/// </summary>
public sealed class ChecksumManifest
{
    private ChecksumManifest(string name, string algorithm, IReadOnlyList<ChecksumEntry> entries, string manifestDigest)
    {
        Name = name;
        Algorithm = algorithm;
        Entries = entries;
        ManifestDigest = manifestDigest;
    }

    /// <summary>The manifest's name as given (e.g. <c>SHA256SUMS</c>); the verifier excludes this path.</summary>
    public string Name { get; }

    /// <summary><c>SHA256</c> or <c>SHA512</c>.</summary>
    public string Algorithm { get; }

    /// <summary>The entries in manifest order.</summary>
    public IReadOnlyList<ChecksumEntry> Entries { get; }

    /// <summary><c>sha256:&lt;hex&gt;</c> of the manifest bytes (UTF-8 of the text when parsed from text).</summary>
    public string ManifestDigest { get; }

    /// <summary>Parses manifest bytes, which must be valid UTF-8 (a UTF-8 BOM is rejected as a malformed line 1).</summary>
    public static ChecksumManifest Parse(string manifestName, ReadOnlySpan<byte> bytes)
    {
        string text;
        try
        {
            text = new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new CheckupException(ChecksumErrors.MalformedLine,
                $"{manifestName}: the manifest is not valid UTF-8; regenerate it with sha256sum on the release files.");
        }
        return ParseCore(manifestName, text, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary>Parses manifest text; throws <see cref="CheckupException"/> naming the line on the first problem.</summary>
    public static ChecksumManifest Parse(string manifestName, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return ParseCore(manifestName, text, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))));
    }

    private static ChecksumManifest ParseCore(string manifestName, string text, string manifestDigest)
    {
        ArgumentException.ThrowIfNullOrEmpty(manifestName);
        var fileName = manifestName.Replace('\\', '/');
        fileName = fileName[(fileName.LastIndexOf('/') + 1)..];
        string? algorithm = fileName.StartsWith("SHA256SUMS", StringComparison.OrdinalIgnoreCase) ? "SHA256"
            : fileName.StartsWith("SHA512SUMS", StringComparison.OrdinalIgnoreCase) ? "SHA512"
            : null;

        var entries = new List<ChecksumEntry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var lineNo = i + 1;
            var line = lines[i];
            if (line.EndsWith('\r')) line = line[..^1];
            if (line.Length == 0 || line[0] == '#') continue;

            string Where() => $"{manifestName} line {lineNo}";

            var escaped = line[0] == '\\';
            var body = escaped ? line[1..] : line;
            var space = body.IndexOf(' ');
            if (space <= 0 || space + 1 >= body.Length || (body[space + 1] != ' ' && body[space + 1] != '*'))
                throw new CheckupException(ChecksumErrors.MalformedLine,
                    $"{Where()}: expected '<hex>  <name>' or '<hex> *<name>' (GNU sha256sum format).");
            var hex = body[..space];
            var binary = body[space + 1] == '*';
            var rawName = body[(space + 2)..];

            if (!IsHex(hex))
                throw new CheckupException(ChecksumErrors.BadDigest, $"{Where()}: the digest is not hexadecimal.");
            var lineAlgorithm = hex.Length switch { 64 => "SHA256", 128 => "SHA512", _ => null };
            if (lineAlgorithm is null || (algorithm is not null && lineAlgorithm != algorithm))
                throw new CheckupException(ChecksumErrors.BadDigest,
                    $"{Where()}: a digest of {hex.Length} hex digits does not fit {algorithm ?? "SHA256 (64) or SHA512 (128)"}.");
            algorithm ??= lineAlgorithm;

            string name;
            if (escaped)
            {
                name = Unescape(rawName) ?? throw new CheckupException(ChecksumErrors.MalformedLine,
                    $"{Where()}: bad escape in the name (only \\\\ and \\n are allowed).");
            }
            else
            {
                name = rawName;
            }

            var path = ValidatePath(name, escaped, Where);
            if (!seen.Add(path))
                throw new CheckupException(ChecksumErrors.DuplicatePath, $"{Where()}: '{Printable(path)}' is listed more than once.");
            entries.Add(new ChecksumEntry(path, hex.ToLowerInvariant(), binary, lineNo));
        }

        if (entries.Count == 0 || algorithm is null)
            throw new CheckupException(ChecksumErrors.EmptyManifest, $"{manifestName}: the manifest lists no file.");
        return new ChecksumManifest(manifestName, algorithm, entries, manifestDigest);
    }

    private static string ValidatePath(string name, bool escaped, Func<string> where)
    {
        foreach (var c in name)
        {
            if (c == '\0')
                throw new CheckupException(ChecksumErrors.ControlCharacter, $"{where()}: the name contains a NUL character.");
            if (char.IsControl(c) && !(escaped && c == '\n'))
                throw new CheckupException(ChecksumErrors.ControlCharacter,
                    $"{where()}: the name contains control character U+{(int)c:X4}.");
        }
        if (name.Contains('\\'))
            throw new CheckupException(ChecksumErrors.BackslashPath,
                $"{where()}: '{Printable(name)}' contains a backslash; use '/' as the path separator.");
        if (name.Length == 0)
            throw new CheckupException(ChecksumErrors.EmptyName, $"{where()}: the name is empty.");
        if (name[0] == '/' || (name.Length >= 2 && name[1] == ':' && char.IsAsciiLetter(name[0])))
            throw new CheckupException(ChecksumErrors.AbsolutePath,
                $"{where()}: '{Printable(name)}' is an absolute path; list paths relative to the release root.");
        var path = name;
        while (path.StartsWith("./", StringComparison.Ordinal)) path = path[2..];
        var segments = path.Split('/');
        foreach (var segment in segments)
        {
            if (segment is ".." or ".")
                throw new CheckupException(ChecksumErrors.ParentSegment,
                    $"{where()}: '{Printable(name)}' contains a '{segment}' segment; paths must stay inside the release root.");
            if (segment.Length == 0)
                throw new CheckupException(ChecksumErrors.EmptyName, $"{where()}: '{Printable(name)}' has an empty path segment.");
        }
        return path;
    }

    private static string? Unescape(string s)
    {
        var sb = new StringBuilder(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] != '\\') { sb.Append(s[i]); continue; }
            if (i + 1 >= s.Length) return null;
            switch (s[++i])
            {
                case '\\': sb.Append('\\'); break;
                case 'n': sb.Append('\n'); break;
                default: return null;
            }
        }
        return sb.ToString();
    }

    private static bool IsHex(string s)
    {
        if (s.Length == 0) return false;
        foreach (var c in s)
            if (!char.IsAsciiHexDigit(c)) return false;
        return true;
    }

    /// <summary>A name safe to print in a message: control characters shown as \uXXXX, capped in length.</summary>
    internal static string Printable(string s)
    {
        var sb = new StringBuilder();
        foreach (var c in s.Length > 200 ? s[..200] : s)
            sb.Append(char.IsControl(c) ? $"\\u{(int)c:X4}" : c.ToString());
        if (s.Length > 200) sb.Append("...");
        return sb.ToString();
    }
}
