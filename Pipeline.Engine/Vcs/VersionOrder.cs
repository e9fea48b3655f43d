using Semver;

namespace Pipeline.Engine.Vcs;

/// <summary>
/// Orders tag names as versions. The rule:
/// <list type="number">
/// <item>A tag is a <b>SemVer tag</b> when it is a strict SemVer 2.0 version (<c>MAJOR.MINOR.PATCH</c>,
/// optional <c>-prerelease</c> and <c>+build</c>, no leading zeros), optionally preceded by one lower-case
/// <c>v</c>. SemVer tags compare by SemVer 2.0 precedence: <c>v1.10.0-rc1</c> &lt; <c>v1.10.0</c>, numeric
/// prerelease identifiers numerically, <c>alpha</c> &lt; <c>alpha.1</c> &lt; <c>beta</c>; build metadata is
/// ignored (<c>v1.0.0+a</c> and <c>v1.0.0+b</c> are the same version: neither is a rollback of the other).</item>
/// <item>Every other tag (<c>release-7</c>, <c>v1.2</c>, <c>1.02.0</c>) ranks <b>below every SemVer tag</b>,
/// so it can never supersede a SemVer release; among themselves they compare naturally (digit runs as
/// numbers, everything else ordinally).</item>
/// </list>
/// <see cref="Compare"/> is the precedence (0 for the same version); <see cref="SortCompare"/> refines it
/// to a total order for listings (build metadata, then the exact name).
/// </summary>
public static class VersionOrder
{
    private const SemVersionStyles Styles = SemVersionStyles.Strict | SemVersionStyles.AllowLowerV;

    /// <summary>The SemVer version a tag names, or null when the tag is not a SemVer tag (see the rule above).</summary>
    public static SemVersion? TryParse(string tag)
        => tag.Length <= 256 && SemVersion.TryParse(tag, Styles, out var v) ? v : null;

    /// <summary>Version precedence: negative when <paramref name="a"/> is older than <paramref name="b"/>, 0 for the same version.</summary>
    public static int Compare(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var va = TryParse(a);
        var vb = TryParse(b);
        return (va, vb) switch
        {
            ({ } x, { } y) => SemVersion.ComparePrecedence(x, y),
            (null, { }) => -1,
            ({ }, null) => 1,
            _ => Natural(a, b),
        };
    }

    /// <summary>A total order consistent with <see cref="Compare"/>: equal precedence is broken by build metadata, then ordinally.</summary>
    public static int SortCompare(string a, string b)
    {
        var c = Compare(a, b);
        if (c != 0) return c;
        if (TryParse(a) is { } va && TryParse(b) is { } vb && (c = SemVersion.CompareSortOrder(va, vb)) != 0) return c;
        return string.CompareOrdinal(a, b);
    }

    /// <summary>Digit runs compare as numbers, everything else ordinally.</summary>
    private static int Natural(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (char.IsAsciiDigit(a[i]) && char.IsAsciiDigit(b[j]))
            {
                var si = i;
                var sj = j;
                while (i < a.Length && char.IsAsciiDigit(a[i])) i++;
                while (j < b.Length && char.IsAsciiDigit(b[j])) j++;
                var na = a[si..i].TrimStart('0');
                var nb = b[sj..j].TrimStart('0');
                var c = na.Length != nb.Length ? na.Length.CompareTo(nb.Length) : string.CompareOrdinal(na, nb);
                if (c != 0) return c;
            }
            else
            {
                var c = a[i].CompareTo(b[j]);
                if (c != 0) return c;
                i++;
                j++;
            }
        }

        var rest = (a.Length - i).CompareTo(b.Length - j);
        return rest != 0 ? rest : string.CompareOrdinal(a, b);
    }
}
