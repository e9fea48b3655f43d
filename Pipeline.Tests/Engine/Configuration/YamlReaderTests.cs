using Pipeline.Engine.Configuration;

namespace Pipeline.Tests.Engine.Configuration;

public class YamlReaderTests
{
    private static (MappingReader? Root, ConfigErrors Errors) Load(string text, bool expand = false)
    {
        var errors = new ConfigErrors();
        return (YamlReader.Load("f.yaml", text, errors, expand), errors);
    }

    [Test]
    public void Unknown_keys_are_reported_with_line_and_a_suggestion()
    {
        var (root, errors) = Load("name: a\nshedule: x\n");
        root!.String("name");
        root.String("schedule");
        root.Done();
        Assert.That(errors.All, Has.Count.EqualTo(1));
        var e = errors.All[0];
        Assert.That((e.Line, e.Message, e.Hint), Is.EqualTo((2, "unknown key 'shedule'", "did you mean 'schedule'?")));
    }

    [Test]
    public void Every_error_of_a_file_is_collected_not_only_the_first()
    {
        var (root, errors) = Load("count: many\nenabled: maybe\nwhen: yesterday\n");
        root!.Int("count", 1, 10);
        root.Bool("enabled");
        root.Date("when");
        root.String("missing", required: true);
        root.Done();
        Assert.That(errors.All.Select(e => e.Line), Is.EqualTo(new[] { 1, 2, 3, 1 }));
        Assert.That(errors.All[3].Message, Is.EqualTo("missing required key 'missing'"));
    }

    [Test]
    public void Aliases_are_rejected_so_that_expansion_bombs_cannot_be_built()
    {
        var (root, errors) = Load("a: &x [1, 2]\nb: [*x, *x]\n");
        Assert.That(root, Is.Null);
        Assert.That(errors.All.Single().Message, Does.Contain("aliases"));
        Assert.That(errors.All.Single().Line, Is.EqualTo(2));
    }

    [Test]
    public void Broken_yaml_names_the_line()
    {
        var (root, errors) = Load("a: 1\nb: \"unclosed\nc: 3\n");
        Assert.That(root, Is.Null);
        Assert.That(errors.All.Single().Message, Does.StartWith("not valid YAML"));
        Assert.That(errors.All.Single().Line, Is.GreaterThanOrEqualTo(2));
    }

    [Test]
    public void Input_that_trips_the_parser_itself_is_an_error_not_a_crash()
    {
        var (root, errors) = Load("a: 1\nb: [unclosed\nc: 3\n");
        Assert.That(root, Is.Null);
        Assert.That(errors.All.Single().Message, Does.StartWith("not valid YAML"));
    }

    [Test]
    public void Duplicate_keys_are_errors()
    {
        var (_, errors) = Load("a: 1\na: 2\n");
        Assert.That(errors.All.Single().Message, Does.Contain("duplicate key").IgnoreCase);
        Assert.That(errors.All.Single().Line, Is.EqualTo(2));
    }

    [Test]
    public void Oversized_input_is_refused_before_parsing()
    {
        var (root, errors) = Load("a: " + new string('x', YamlReader.MaxBytes + 1));
        Assert.That(root, Is.Null);
        Assert.That(errors.All.Single().Message, Does.Contain("larger than"));
    }

    [Test]
    public void Deep_nesting_is_refused()
    {
        var (root, errors) = Load(string.Concat(Enumerable.Repeat("[", 40)) + string.Concat(Enumerable.Repeat("]", 40)));
        Assert.That(root, Is.Null);
        Assert.That(errors.All.Single().Message, Does.Contain("deeper than 32"));
    }

    [Test]
    public void Environment_references_expand_only_when_asked_and_unset_ones_are_errors()
    {
        Environment.SetEnvironmentVariable("PIPELINE_TEST_DIR", "/srv/x");
        var (root, errors) = Load("a: ${PIPELINE_TEST_DIR}/f\nb: ${PIPELINE_TEST_UNSET_VARIABLE}\n", expand: true);
        Assert.That(root!.String("a"), Is.EqualTo("/srv/x/f"));
        root.String("b");
        Assert.That(errors.All.Single().Message, Is.EqualTo("environment variable 'PIPELINE_TEST_UNSET_VARIABLE' is not set"));

        var (raw, _) = Load("a: ${PIPELINE_TEST_DIR}\n");
        Assert.That(raw!.String("a"), Is.EqualTo("${PIPELINE_TEST_DIR}"));
    }

    [TestCase("512", 512L)]
    [TestCase("64KiB", 65536L)]
    [TestCase("2GiB", 2147483648L)]
    [TestCase("1MB", 1000000L)]
    public void Sizes_parse(string text, long expected)
    {
        Assert.That(ByteSize.TryParse(text, out var v), Is.True);
        Assert.That(v, Is.EqualTo(expected));
    }

    [TestCase("-1")]
    [TestCase("1.5GiB")]
    [TestCase("99999999999999999999")]
    [TestCase("9999999999TiB")]
    public void Bad_sizes_do_not_parse(string text) => Assert.That(ByteSize.TryParse(text, out _), Is.False);
}
