using System.Text;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Pipeline.Checkup.Manifests;

/// <summary>
/// Writes manifest nodes back as YAML, deterministically: keys in their order, strings quoted
/// (double quotes, or literal blocks for multi-line text) so no YAML 1.1 parser reads them as
/// another type, plain scalars as they were. Same nodes, same bytes.
/// </summary>
public static class ManifestYamlWriter
{
    public static string Write(ManifestNode root)
    {
        var sb = new StringBuilder();
        using (var w = new StringWriter(sb) { NewLine = "\n" })
        {
            var e = new Emitter(w, new EmitterSettings(2, int.MaxValue, false, 1024, false, false, "\n"));
            e.Emit(new StreamStart());
            e.Emit(new DocumentStart(null, null, true));
            Emit(e, root);
            e.Emit(new DocumentEnd(true));
            e.Emit(new StreamEnd());
        }
        return sb.ToString();
    }

    private static void Emit(IEmitter e, ManifestNode node)
    {
        switch (node)
        {
            case ManifestScalar s:
                if (!s.IsString)
                    // An empty plain scalar is null; the emitter would write '' (a string), so say null.
                    e.Emit(new Scalar(null, null, s.Value.Length == 0 ? "null" : s.Value, ScalarStyle.Plain, true, false));
                else
                    e.Emit(new Scalar(null, null, s.Value, s.Value.Contains('\n') && IsPrintable(s.Value) ? ScalarStyle.Literal : ScalarStyle.DoubleQuoted, false, true));
                break;
            case ManifestSequence q:
                e.Emit(new SequenceStart(null, null, false, SequenceStyle.Block));
                foreach (var i in q.Items) Emit(e, i);
                e.Emit(new SequenceEnd());
                break;
            case ManifestMapping m:
                e.Emit(new MappingStart(null, null, false, MappingStyle.Block));
                foreach (var (k, v) in m.Entries)
                {
                    e.Emit(new Scalar(null, null, k.Value, k.IsString || NeedsQuoting(k.Value) ? ScalarStyle.DoubleQuoted : ScalarStyle.Plain, !k.IsString, true));
                    Emit(e, v);
                }
                e.Emit(new MappingEnd());
                break;
        }
    }

    /// <summary>Plain keys that a YAML 1.1 reader would take for something other than a string stay quoted.</summary>
    private static bool NeedsQuoting(string key) =>
        !PlainKey.IsMatch(key) || new ManifestScalar(key, false).AsBool is not null || new ManifestScalar(key, false).IsNull;

    private static readonly System.Text.RegularExpressions.Regex PlainKey = new("^[A-Za-z0-9_][A-Za-z0-9_./-]*$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    // Literal blocks cannot carry trailing spaces on lines, tabs or control characters faithfully.
    private static bool IsPrintable(string v) => v.All(c => c == '\n' || (c >= ' ' && c != '\u007f')) && !v.Contains(" \n", StringComparison.Ordinal) && !v.StartsWith(' ');
}
