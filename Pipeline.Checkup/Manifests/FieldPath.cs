using System.Globalization;
using System.Text.RegularExpressions;

namespace Pipeline.Checkup.Manifests;

/// <summary>
/// A path to a field in a Kubernetes object: <c>spec.template.spec.containers[name=web].resources.limits.memory</c>.
/// Segments are keys (<c>[A-Za-z0-9_-]+</c>), list positions <c>[N]</c> or list items picked by a field
/// (<c>[name=web]</c>). The last segment must be a key or a position.
/// </summary>
public sealed record FieldPath(IReadOnlyList<FieldPath.Segment> Segments)
{
    public abstract record Segment;

    public sealed record Key(string Name) : Segment;

    public sealed record Index(int Position) : Segment;

    public sealed record Match(string Field, string Value) : Segment;

    private static readonly Regex Token = new(@"\G(?:(?<key>[A-Za-z0-9_-]+)|\[(?<index>\d{1,4})\]|\[(?<field>[A-Za-z0-9_-]+)=(?<value>[A-Za-z0-9_.-]+)\])(?<dot>\.)?", RegexOptions.CultureInvariant);

    public static FieldPath? TryParse(string text)
    {
        if (text.Length is 0 or > 512) return null;
        var segments = new List<Segment>();
        var pos = 0;
        var needDot = false;
        while (pos < text.Length)
        {
            var m = Token.Match(text, pos);
            if (!m.Success) return null;
            if (m.Groups["key"].Success)
            {
                if (needDot && segments.Count > 0) return null;
                segments.Add(new Key(m.Groups["key"].Value));
            }
            else if (m.Groups["index"].Success) segments.Add(new Index(int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture)));
            else segments.Add(new Match(m.Groups["field"].Value, m.Groups["value"].Value));
            pos += m.Length;
            needDot = !m.Groups["dot"].Success;
            if (m.Groups["dot"].Success && pos == text.Length) return null;
        }

        return segments.Count == 0 || segments[0] is not Key || segments[^1] is Match ? null : new FieldPath(segments);
    }

    /// <summary>The keys of the path in order (positions and matches left out).</summary>
    public IReadOnlyList<string> Keys => Segments.OfType<Key>().Select(k => k.Name).ToList();

    /// <summary>
    /// Sets the field in <paramref name="root"/>: every step but the last must exist; the last key is
    /// added when missing. Returns null when done, else why not.
    /// </summary>
    public string? SetIn(ManifestMapping root, ManifestNode value)
    {
        ManifestNode current = root;
        for (var i = 0; i < Segments.Count; i++)
        {
            var last = i == Segments.Count - 1;
            switch (Segments[i])
            {
                case Key k when current is ManifestMapping m:
                    if (last) { m.Set(k.Name, value); return null; }
                    current = m[k.Name]!;
                    if (current is null) return $"'{k.Name}' does not exist";
                    break;
                case Index ix when current is ManifestSequence s:
                    if (ix.Position >= s.Items.Count) return $"position [{ix.Position}] does not exist";
                    if (last) { s.Items[ix.Position] = value; return null; }
                    current = s.Items[ix.Position];
                    break;
                case Match mt when current is ManifestSequence s:
                    var found = s.Items.OfType<ManifestMapping>().Where(x => x.Text(mt.Field) == mt.Value).ToList();
                    if (found.Count != 1) return found.Count == 0 ? $"no item with {mt.Field}={mt.Value}" : $"more than one item with {mt.Field}={mt.Value}";
                    current = found[0];
                    break;
                default:
                    return $"segment {i + 1} does not fit the object's structure";
            }
        }
        return "the path is empty";
    }
}
