using System.Globalization;
using System.Text.RegularExpressions;

namespace Pipeline.Checkup.Scanning;

/// <summary>
/// The limits up to which clamd actually reads content. Past them clamd skips an archive member
/// (or stops unpacking) and may still answer <c>OK</c>, so the engine must know them: they are read
/// from the clamd configuration file the operator names (<see cref="Parse"/>) or given explicitly,
/// never assumed. A value of 0 means "no limit" in clamd's own sense (only where clamd allows it).
/// </summary>
/// <param name="MaxFileSize">Largest file (or archive member) clamd scans; larger members are skipped.</param>
/// <param name="MaxScanSize">Most bytes clamd scans within one file, all unpacked members counted.</param>
/// <param name="MaxRecursion">Deepest archive level clamd descends to.</param>
/// <param name="MaxFiles">Most members clamd scans within one file.</param>
/// <param name="StreamMaxLength">Largest stream clamd accepts (INSTREAM).</param>
/// <param name="Source">Where the limits came from (a file name or "engine configuration"), for verdicts and evidence.</param>
public sealed record ClamdLimits(long MaxFileSize, long MaxScanSize, int MaxRecursion, int MaxFiles, long StreamMaxLength, string Source)
{
    /// <summary>clamd 1.4's built-in values for the keys a configuration file leaves out (clamd.conf(5)).</summary>
    public static ClamdLimits Defaults { get; } = new(100L << 20, 400L << 20, 17, 10_000, 100L << 20, "clamd defaults");

    /// <summary>The largest value clamd accepts for a size limit (about 4000 MB); clamd cannot handle files over 2 GiB at all.</summary>
    public const long MaxSizeValue = 4000L << 20;

    private static readonly Regex SizeValue = new(@"^(\d{1,12})([kKmM]?)$", RegexOptions.CultureInvariant);

    /// <summary>One problem found while reading a clamd configuration (1-based line, 0 when unknown).</summary>
    public sealed record Problem(int Line, string Message);

    /// <summary>Reads a clamd configuration file; problems go to <paramref name="problems"/> (line numbers from the file).</summary>
    public static ClamdLimits? Load(string file, List<Problem> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        string text;
        try
        {
            text = File.ReadAllText(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add(new Problem(0, $"cannot read the clamd configuration: {e.Message}"));
            return null;
        }

        // Only the file's name: verdicts end up in signed evidence, which must not carry the engine's local paths.
        return Parse(text, "clamd configuration " + Path.GetFileName(file), problems);
    }

    /// <summary>
    /// Parses clamd.conf text the way clamd does: one <c>Key value</c> per line, <c>#</c> comments,
    /// sizes with an optional K or M suffix, the last occurrence of a key wins, absent keys take
    /// clamd's defaults (<see cref="Defaults"/>). Returns null when there are problems.
    /// </summary>
    public static ClamdLimits? Parse(string text, string source, List<Problem> problems)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(problems);
        var before = problems.Count;
        var limits = Defaults with { Source = source };
        var lineNo = 0;
        foreach (var raw in text.Split('\n'))
        {
            lineNo++;
            var line = raw.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var split = line.IndexOfAny([' ', '\t']);
            var key = split < 0 ? line : line[..split];
            var value = split < 0 ? "" : line[(split + 1)..].Trim();
            switch (key)
            {
                case "MaxFileSize": limits = limits with { MaxFileSize = Size(value, key, lineNo, problems) ?? limits.MaxFileSize }; break;
                case "MaxScanSize": limits = limits with { MaxScanSize = Size(value, key, lineNo, problems) ?? limits.MaxScanSize }; break;
                case "StreamMaxLength": limits = limits with { StreamMaxLength = Size(value, key, lineNo, problems) ?? limits.StreamMaxLength }; break;
                case "MaxRecursion": limits = limits with { MaxRecursion = Count(value, key, lineNo, problems) ?? limits.MaxRecursion }; break;
                case "MaxFiles": limits = limits with { MaxFiles = Count(value, key, lineNo, problems) ?? limits.MaxFiles }; break;
                case "ScanArchive" when value.Equals("no", StringComparison.OrdinalIgnoreCase) || value.Equals("false", StringComparison.OrdinalIgnoreCase) || value == "0":
                    problems.Add(new Problem(lineNo, "ScanArchive is off: clamd would not look inside any archive, so no archive could pass as scanned"));
                    break;
            }
        }

        return problems.Count > before ? null : limits;
    }

    /// <summary>Checks explicit limits (from the engine configuration); returns the problems.</summary>
    public IReadOnlyList<string> Validate()
    {
        var list = new List<string>();
        if (MaxFileSize is < 0 or > MaxSizeValue) list.Add($"maxFileSize must be between 0 and {MaxSizeValue} bytes");
        if (MaxScanSize is < 0 or > MaxSizeValue) list.Add($"maxScanSize must be between 0 and {MaxSizeValue} bytes");
        if (StreamMaxLength is < 1 or > MaxSizeValue) list.Add($"streamMaxLength must be between 1 and {MaxSizeValue} bytes");
        if (MaxRecursion < 1) list.Add("maxRecursion must be at least 1");
        if (MaxFiles < 0) list.Add("maxFiles must not be negative");
        return list;
    }

    /// <summary>A one-line description for verdicts, e.g. <c>MaxFileSize=67108864 MaxScanSize=... (from /etc/clamav/clamd.conf)</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"MaxFileSize={MaxFileSize} MaxScanSize={MaxScanSize} MaxRecursion={MaxRecursion} MaxFiles={MaxFiles} StreamMaxLength={StreamMaxLength} (from {Source})");

    private static long? Size(string value, string key, int line, List<Problem> problems)
    {
        var m = SizeValue.Match(value);
        if (!m.Success)
        {
            problems.Add(new Problem(line, $"{key} '{value}' is not a size clamd understands (a number with an optional K or M suffix, e.g. 64M)"));
            return null;
        }

        var n = long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        n *= m.Groups[2].Value.ToUpperInvariant() switch { "K" => 1L << 10, "M" => 1L << 20, _ => 1 };
        if (n > MaxSizeValue)
        {
            problems.Add(new Problem(line, $"{key} {value} is more than clamd accepts ({MaxSizeValue / (1 << 20)}M)"));
            return null;
        }

        return n;
    }

    private static int? Count(string value, string key, int line, List<Problem> problems)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return n;
        problems.Add(new Problem(line, $"{key} '{value}' is not a whole number"));
        return null;
    }
}
