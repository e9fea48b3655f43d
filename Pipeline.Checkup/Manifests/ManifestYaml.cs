using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Pipeline.Checkup.Manifests;

/// <summary>
/// Reads multi-document YAML from a supplier with hard limits: size, documents, nodes and depth;
/// no anchors or aliases (billion laughs), no merge keys (<c>&lt;&lt;</c>, which kubectl's YAML 1.1
/// parser would honour and we would not see), no tags but <c>!!str</c>, no duplicate or non-scalar keys.
/// Every problem becomes a violation; a file with a structural problem yields no documents.
/// </summary>
public static class ManifestYaml
{
    public const int MaxFileBytes = 1024 * 1024;
    public const int MaxDocumentsPerFile = 200;
    public const int MaxNodesPerFile = 200_000;
    public const int MaxDepth = 64;

    private const string StrTag = "tag:yaml.org,2002:str";

    /// <summary>Parses <paramref name="text"/>; empty documents are skipped, other non-mapping documents are violations.</summary>
    public static IReadOnlyList<ManifestDocument> Parse(string file, string text, List<ManifestViolation> violations)
    {
        if (text.Length > MaxFileBytes)
        {
            violations.Add(new(ManifestCodes.TooLarge, file, 1, 1, $"the file is larger than {MaxFileBytes} bytes; split it"));
            return [];
        }

        var docs = new List<ManifestDocument>();
        var before = violations.Count;
        try
        {
            var parser = new Parser(new StringReader(text));
            var state = new State(file, violations);
            parser.Consume<StreamStart>();
            var index = 0;
            while (parser.TryConsume<DocumentStart>(out _))
            {
                if (++index > MaxDocumentsPerFile)
                {
                    violations.Add(new(ManifestCodes.TooManyDocuments, file, Line(parser.Current), 1, $"more than {MaxDocumentsPerFile} YAML documents in one file"));
                    return [];
                }

                var root = ReadNode(parser, state, 1);
                if (state.Aborted) return [];
                parser.Consume<DocumentEnd>();
                switch (root)
                {
                    case ManifestScalar { IsNull: true }:
                        break; // an empty document (e.g. a trailing '---'): kubectl skips it too
                    case ManifestMapping m:
                        docs.Add(new ManifestDocument(file, index - 1, m));
                        break;
                    default:
                        violations.Add(new(ManifestCodes.NotAnObject, file, root.Line, root.Column, "a YAML document must be a mapping (a Kubernetes object)"));
                        break;
                }
            }

            parser.Consume<StreamEnd>();
        }
        catch (YamlException e)
        {
            violations.Add(new(ManifestCodes.InvalidYaml, file, (int)e.Start.Line, (int)e.Start.Column, "not valid YAML: " + Clean(e.Message)));
            return [];
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            violations.Add(new(ManifestCodes.InvalidYaml, file, 1, 1, "not valid YAML: the parser gave up (" + e.GetType().Name + ")"));
            return [];
        }

        // Duplicate keys and the like are reported but leave the file unusable for rendering.
        return violations.Count > before ? [] : docs;
    }

    private sealed class State(string file, List<ManifestViolation> violations)
    {
        public string File { get; } = file;
        public List<ManifestViolation> Violations { get; } = violations;
        public int Nodes { get; set; }
        public bool Aborted { get; set; }

        public void Abort(string code, ParsingEvent at, string message)
        {
            Violations.Add(new(code, File, Line(at), (int)at.Start.Column, message));
            Aborted = true;
        }
    }

    private static ManifestNode ReadNode(IParser parser, State s, int depth)
    {
        var ev = parser.Current ?? throw new InvalidOperationException("unexpected end of YAML");
        if (++s.Nodes > MaxNodesPerFile) { s.Abort(ManifestCodes.TooLarge, ev, $"more than {MaxNodesPerFile} YAML nodes in one file"); return Skip(parser); }
        if (depth > MaxDepth) { s.Abort(ManifestCodes.TooDeep, ev, $"nesting deeper than {MaxDepth} levels"); return Skip(parser); }
        if (ev is AnchorAlias) { s.Abort(ManifestCodes.YamlAlias, ev, "YAML aliases (*name) are not allowed; write the value out in full"); return Skip(parser); }
        if (ev is NodeEvent { Anchor.IsEmpty: false } anchored) { s.Abort(ManifestCodes.YamlAlias, ev, $"YAML anchors (&{anchored.Anchor.Value}) are not allowed; write values out in full"); return Skip(parser); }

        var line = Line(ev);
        var col = (int)ev.Start.Column;
        switch (ev)
        {
            case Scalar sc:
                parser.MoveNext();
                var tagged = !sc.Tag.IsEmpty;
                if (tagged && sc.Tag.Value != StrTag)
                    s.Violations.Add(new(ManifestCodes.YamlTag, s.File, line, col, $"YAML tag '{sc.Tag.Value}' is not allowed (only !!str)"));
                return new ManifestScalar(sc.Value, sc.Style != ScalarStyle.Plain || tagged, line, col);
            case SequenceStart ss:
                parser.MoveNext();
                if (!ss.Tag.IsEmpty) s.Violations.Add(new(ManifestCodes.YamlTag, s.File, line, col, $"YAML tag '{ss.Tag.Value}' is not allowed"));
                var seq = new ManifestSequence(line, col);
                while (!parser.TryConsume<SequenceEnd>(out _))
                {
                    seq.Items.Add(ReadNode(parser, s, depth + 1));
                    if (s.Aborted) return seq;
                }
                return seq;
            case MappingStart ms:
                parser.MoveNext();
                if (!ms.Tag.IsEmpty) s.Violations.Add(new(ManifestCodes.YamlTag, s.File, line, col, $"YAML tag '{ms.Tag.Value}' is not allowed"));
                var map = new ManifestMapping(line, col);
                var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
                while (!parser.TryConsume<MappingEnd>(out _))
                {
                    var key = ReadNode(parser, s, depth + 1);
                    if (s.Aborted) return map;
                    var value = ReadNode(parser, s, depth + 1);
                    if (s.Aborted) return map;
                    if (key is not ManifestScalar k)
                        s.Violations.Add(new(ManifestCodes.YamlKey, s.File, key.Line, key.Column, "mapping keys must be plain strings"));
                    else if (k is { IsString: false, Value: "<<" })
                        s.Violations.Add(new(ManifestCodes.YamlMergeKey, s.File, k.Line, k.Column, "YAML merge keys (<<) are not allowed; write the keys out"));
                    else if (!seen.Add(k.Value))
                        s.Violations.Add(new(ManifestCodes.YamlDuplicateKey, s.File, k.Line, k.Column, $"duplicate key '{Short(k.Value)}' (also when differing only in case: decoders disagree on which one wins)"));
                    else
                        map.Entries.Add(new(k, value));
                }
                return map;
            default:
                throw new InvalidOperationException("unexpected YAML event " + ev.GetType().Name);
        }
    }

    private static ManifestScalar Skip(IParser parser)
    {
        var ev = parser.Current!;
        parser.SkipThisAndNestedEvents();
        return new ManifestScalar("", false, Line(ev), (int)ev.Start.Column);
    }

    private static int Line(ParsingEvent? e) => e is null ? 1 : (int)e.Start.Line;

    internal static string Short(string v) => v.Length <= 60 ? v : v[..57] + "...";

    private static string Clean(string message)
    {
        var i = message.LastIndexOf("): ", StringComparison.Ordinal);
        return i >= 0 ? message[(i + 3)..] : message;
    }
}
