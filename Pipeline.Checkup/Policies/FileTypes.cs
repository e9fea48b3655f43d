using System.Text;

namespace Pipeline.Checkup.Policies;

/// <summary>A file's type judged by its first bytes (magic numbers), never by its name.</summary>
public enum FileType
{
    Unknown,
    Empty,
    Elf,
    Pe,
    MachO,
    Script,
    Zip,
    Gzip,
    Tar,
    SevenZip,
    Rar,
    Bzip2,
    Xz,
    Zstd,
    Cab,
    Pdf,
    Java,
}

/// <summary>
/// Type names usable in policies: each type in kebab case (<c>elf</c>, <c>mach-o</c>, <c>seven-zip</c>, ...)
/// and the groups <c>executable</c> (elf, pe, mach-o, java class), <c>script</c> (a <c>#!</c> line)
/// and <c>archive</c> (zip, gzip, tar, 7z, rar, bzip2, xz, zstd, cab).
/// </summary>
public static class FileTypes
{
    /// <summary>How many leading bytes <see cref="Detect"/> looks at (tar's magic is at offset 257).</summary>
    public const int HeadLength = 512;

    public static readonly IReadOnlyList<FileType> Executables = [FileType.Elf, FileType.Pe, FileType.MachO, FileType.Java];
    public static readonly IReadOnlyList<FileType> Archives = [FileType.Zip, FileType.Gzip, FileType.Tar, FileType.SevenZip, FileType.Rar, FileType.Bzip2, FileType.Xz, FileType.Zstd, FileType.Cab];

    /// <summary>Judges the type from the first bytes of a file (up to <see cref="HeadLength"/>).</summary>
    public static FileType Detect(ReadOnlySpan<byte> head)
    {
        if (head.IsEmpty) return FileType.Empty;
        if (head.StartsWith("\x7F"u8) && head[1..].StartsWith("ELF"u8)) return FileType.Elf;
        if (head.StartsWith("MZ"u8)) return FileType.Pe;
        if (head.Length >= 4)
        {
            var be = (uint)(head[0] << 24 | head[1] << 16 | head[2] << 8 | head[3]);
            // Mach-O 32/64 either byte order; 0xCAFEBABE is a fat Mach-O or a Java class (told apart by the next word).
            if (be is 0xFEEDFACE or 0xFEEDFACF or 0xCEFAEDFE or 0xCFFAEDFE) return FileType.MachO;
            if (be == 0xCAFEBABE)
                return head.Length >= 8 && (head[4] << 8 | head[5]) == 0 && (head[6] << 8 | head[7]) < 45 ? FileType.MachO : FileType.Java;
        }
        if (head.StartsWith("#!"u8)) return FileType.Script;
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8) || head.StartsWith("PK\x07\x08"u8)) return FileType.Zip;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B])) return FileType.Gzip;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C])) return FileType.SevenZip;
        if (head.StartsWith("Rar!\x1A\x07"u8)) return FileType.Rar;
        if (head.StartsWith("BZh"u8)) return FileType.Bzip2;
        if (head.StartsWith((ReadOnlySpan<byte>)[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])) return FileType.Xz;
        if (head.StartsWith((ReadOnlySpan<byte>)[0x28, 0xB5, 0x2F, 0xFD])) return FileType.Zstd;
        if (head.StartsWith("MSCF"u8)) return FileType.Cab;
        if (head.StartsWith("%PDF-"u8)) return FileType.Pdf;
        if (head.Length >= 262 && head.Slice(257, 5).SequenceEqual("ustar"u8)) return FileType.Tar;
        return FileType.Unknown;
    }

    /// <summary>True for the types that may hold other files.</summary>
    public static bool IsArchive(FileType t) => Archives.Contains(t);

    /// <summary>Kebab-case policy name of a type (<c>mach-o</c>, <c>seven-zip</c>).</summary>
    public static string Name(FileType t) => t switch
    {
        FileType.MachO => "mach-o",
        FileType.SevenZip => "seven-zip",
        _ => t.ToString().ToLowerInvariant(),
    };

    /// <summary>Resolves a policy type name or group; null when unknown.</summary>
    public static IReadOnlyList<FileType>? Resolve(string name) => name switch
    {
        "executable" => Executables,
        "archive" => Archives,
        _ => Enum.GetValues<FileType>().Where(t => t is not FileType.Unknown and not FileType.Empty && Name(t) == name).ToArray() is { Length: 1 } one ? one : null,
    };

    /// <summary>Every name <see cref="Resolve"/> accepts, for hints.</summary>
    public static IReadOnlyList<string> KnownNames { get; } =
        ["executable", "archive", .. Enum.GetValues<FileType>().Where(t => t is not FileType.Unknown and not FileType.Empty).Select(Name)];
}

/// <summary>Path globs as used in policies: <c>**</c> any number of folders, <c>*</c> any characters but '/', <c>?</c> one character.</summary>
public sealed class PathGlob
{
    private readonly System.Text.RegularExpressions.Regex _regex;

    private PathGlob(string pattern, System.Text.RegularExpressions.Regex regex)
    {
        Pattern = pattern;
        _regex = regex;
    }

    public string Pattern { get; }

    /// <summary>Parses a glob; null when it is empty, absolute or contains '..' or a backslash.</summary>
    public static PathGlob? TryParse(string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern) || pattern.StartsWith('/') || pattern.Contains('\\') || pattern.Split('/').Contains("..")) return null;
        var sb = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '*' && i + 1 < pattern.Length && pattern[i + 1] == '*')
            {
                var slash = i + 2 < pattern.Length && pattern[i + 2] == '/';
                sb.Append(slash ? "(?:.*/)?" : ".*");
                i += slash ? 2 : 1;
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(System.Text.RegularExpressions.Regex.Escape(c.ToString()));
        }
        // "docs/" or "docs" also means everything below it.
        var text = sb.ToString();
        if (pattern.EndsWith('/')) text += ".*";
        else if (!pattern.Contains('*') && !pattern.Contains('?')) text += "(?:/.*)?";
        return new PathGlob(pattern, new System.Text.RegularExpressions.Regex(text + "$",
            System.Text.RegularExpressions.RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)));
    }

    public bool IsMatch(string relativePath) => _regex.IsMatch(relativePath);

    public override string ToString() => Pattern;
}
