using System.Diagnostics;
using System.Text;
using Pipeline.Checkup.Manifests;

namespace Pipeline.Tests.Checkup.Manifests;

public class ManifestYamlTests
{
    private static (IReadOnlyList<ManifestDocument> Docs, List<ManifestViolation> Violations) Parse(string yaml)
    {
        var v = new List<ManifestViolation>();
        return (ManifestYaml.Parse("m.yaml", yaml, v), v);
    }

    [Test]
    public void Billion_laughs_is_refused_at_the_first_anchor_without_expanding()
    {
        var sb = new StringBuilder("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (var i = 1; i < 10; i++) sb.Append($"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]\n");
        var sw = Stopwatch.StartNew();
        var (docs, v) = Parse(sb.ToString());
        Assert.That(sw.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)));
        Assert.That(docs, Is.Empty);
        Assert.That(v.Select(x => (x.Code, x.File, x.Line)), Is.EqualTo(new[] { (ManifestCodes.YamlAlias, "m.yaml", 1) }));
    }

    [Test]
    public void An_alias_alone_is_refused_with_its_line()
    {
        var (_, v) = Parse("a: 1\nb: *x\n");
        Assert.That(v.Select(x => x.Code), Has.Member(ManifestCodes.YamlAlias).Or.Member(ManifestCodes.InvalidYaml));
    }

    [Test]
    public void Duplicate_keys_merge_keys_and_tags_are_all_reported_with_lines()
    {
        var (docs, v) = Parse("""
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: x
              name: y
            data:
              <<: {privileged: "true"}
              a: !!binary aGVsbG8=
              b: !!str true
            spec:
              Privileged: true
              privileged: false
            """);
        Assert.That(docs, Is.Empty, "a file with problems yields nothing to render");
        Assert.That(v.Select(x => (x.Code, x.Line)), Is.EquivalentTo(new[]
        {
            (ManifestCodes.YamlDuplicateKey, 5), (ManifestCodes.YamlMergeKey, 7), (ManifestCodes.YamlTag, 8), (ManifestCodes.YamlDuplicateKey, 12),
        }), string.Join("\n", v));
    }

    [Test]
    public void A_str_tag_makes_a_string()
    {
        var (docs, v) = Parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  b: !!str true\n");
        Assert.That(v, Is.Empty);
        var b = (ManifestScalar)docs[0].Root.Map("data")!["b"]!;
        Assert.That((b.Value, b.IsString, b.AsBool), Is.EqualTo(("true", true, (bool?)null)));
    }

    [Test]
    public void Huge_files_many_documents_and_deep_nesting_are_refused()
    {
        var big = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: \"" + new string('x', ManifestYaml.MaxFileBytes) + "\"\n";
        Assert.That(Parse(big).Violations.Select(x => x.Code), Is.EqualTo(new[] { ManifestCodes.TooLarge }));

        var many = string.Concat(Enumerable.Repeat("---\na: 1\n", ManifestYaml.MaxDocumentsPerFile + 1));
        var (docs, v) = Parse(many);
        Assert.That((docs.Count, v.Single().Code), Is.EqualTo((0, ManifestCodes.TooManyDocuments)));

        var deep = new string('[', 1000) + new string(']', 1000);
        Assert.That(Parse("a: " + deep).Violations.Select(x => x.Code), Is.EqualTo(new[] { ManifestCodes.TooDeep }));
    }

    [Test]
    public void Broken_yaml_and_non_object_documents_are_violations_and_empty_documents_are_skipped()
    {
        Assert.That(Parse("a: [1, 2\nb: 3\n").Violations.Single().Code, Is.EqualTo(ManifestCodes.InvalidYaml));
        var (docs, v) = Parse("---\n---\na: 1\n---\n");
        Assert.That((docs.Count, v.Count), Is.EqualTo((1, 0)));
        var (none, list) = Parse("a: 1\n---\n- a\n- b\n");
        Assert.That(none, Is.Empty, "a file with a problem yields nothing");
        Assert.That(list.Select(x => (x.Code, x.Line)), Is.EqualTo(new[] { (ManifestCodes.NotAnObject, 3) }));
    }

    [Test]
    public void The_writer_quotes_strings_so_no_yaml_1_1_reader_changes_their_type()
    {
        var (docs, v) = Parse("a: \"yes\"\nb: yes\nc: \"0012\"\nd: 12\ne: \"multi\\nline\\n\"\n\"on\": x\nf: \"\"\n");
        Assert.That(v, Is.Empty);
        var text = ManifestYamlWriter.Write(docs[0].Root);
        Assert.That(text, Is.EqualTo("a: \"yes\"\nb: yes\nc: \"0012\"\nd: 12\ne: |\n  multi\n  line\n\"on\": x\nf: \"\"\n"));
        var again = Parse(text).Docs[0].Root;
        Assert.That(ManifestYamlWriter.Write(again), Is.EqualTo(text), "writing is stable");
    }
}

public class ManifestMutationTests
{
    /// <summary>Mangled manifests only ever produce violations: no exception escapes the reader or the checker.</summary>
    [Test]
    public void Random_mutations_of_manifests_never_throw()
    {
        var seeds = new[] { ManifestTestData.GoodDeployment, ManifestTestData.EveryControlBroken, ManifestTestData.GoodIngress, ManifestTestData.GoodConfigMap };
        var pieces = new[] { ":", "-", " ", "\n", "[", "]", "{", "}", "&a", "*a", "!!", "'", "\"", "null", "~", "0", "- x", "? ", "|", ">", "\t", "---\n", "<<: " };
        var random = new Random(20261201);
        var violations = 0;
        for (var i = 0; i < 1000; i++)
        {
            var text = seeds[i % seeds.Length].ToCharArray().ToList();
            for (var m = random.Next(1, 4); m > 0; m--)
            {
                var at = random.Next(text.Count);
                switch (random.Next(3))
                {
                    case 0: text.RemoveRange(at, Math.Min(random.Next(1, 8), text.Count - at)); break;
                    case 1: text.InsertRange(at, pieces[random.Next(pieces.Length)]); break;
                    default: (text[at], text[random.Next(text.Count)]) = (text[random.Next(text.Count)], text[at]); break;
                }
            }

            var yaml = new string(text.ToArray());
            var v = new List<ManifestViolation>();
            try
            {
                var docs = ManifestYaml.Parse("m.yaml", yaml, v);
                v.AddRange(ManifestChecker.Check(docs, ManifestPolicy.Restricted, new ImageRule.DeclaredNames(["web"])));
                foreach (var d in docs)
                {
                    // What we write reads back to the same values, typed the same way.
                    var written = ManifestYamlWriter.Write(d.Root);
                    var again = ManifestYaml.Parse("w.yaml", written, v);
                    Assert.That(again.Count == 1 && Canon(again[0].Root) == Canon(d.Root), $"mutation {i}: round trip differs\n{written}");
                }
            }
            catch (Exception e) when (e is not AssertionException)
            {
                Assert.Fail($"mutation {i} threw {e.GetType().Name}: {e.Message}\n{yaml}");
            }
            violations += v.Count;
        }
        Assert.That(violations, Is.GreaterThan(1000), "the mutations do break things");
    }

    private static readonly System.Text.RegularExpressions.Regex Typed = new(@"^[-+]?(\.?[0-9][0-9_.eE+:-]*|\.inf|\.Inf|\.INF|\.nan|\.NaN|\.NAN|0x[0-9a-fA-F_]+|0o?[0-7_]+|0b[01_]+)$");

    /// <summary>Keys and values with the type a YAML 1.1 reader gives them (plain non-strings marked).</summary>
    private static string Canon(ManifestNode n) => n switch
    {
        ManifestMapping m => "{" + string.Join(",", m.Entries.Select(e => e.Key.Value + "=" + Canon(e.Value))) + "}",
        ManifestSequence q => "[" + string.Join(",", q.Items.Select(Canon)) + "]",
        ManifestScalar { IsNull: true } => "null",
        ManifestScalar { IsString: false } s when s.AsBool is not null || Typed.IsMatch(s.Value) => "p:" + s.Value,
        ManifestScalar s => "s:" + s.Value,
        _ => "?",
    };
}
