using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Definitions;

public class PipelineDefinitionTests
{
    private static IEnumerable<string> ShippedDefinitions() =>
        Directory.EnumerateFiles(Path.Combine(TestServices.RepoRoot, "pipelines"), "*.yaml")
            .Select(Path.GetFileName)!;

    [TestCaseSource(nameof(ShippedDefinitions))]
    public void Every_shipped_pipeline_definition_is_valid(string file)
    {
        var def = PipelineDefinitionLoader.Load(Path.Combine(TestServices.RepoRoot, "pipelines", file), checkEnvironment: false);
        Assert.That(def.Name, Is.EqualTo(Path.GetFileNameWithoutExtension(file)));
        Assert.That(def.Signers, Is.Not.Empty);
    }

    [Test]
    public void There_is_at_least_one_shipped_definition() => Assert.That(ShippedDefinitions(), Is.Not.Empty);

    [Test]
    public void All_errors_of_a_bad_definition_are_reported_with_lines()
    {
        const string text = """
            name: Wrong_Name
            supplier: S
            schedule: every day
            source:
              url: https://user:secret@git.example/x.git
              tagPattern: '(['
            signers:
              - name: A
                organisation: O
                sshKey: ssh-ed25519 notbase64!!
            publish:
              repository: ok/repo
            images:
              repositoryPrefix: apps/x
              allowedBaseImages: [base/busybox:latest]
            extra: 1
            """;
        var errors = new ConfigErrors();
        var def = PipelineDefinitionLoader.Parse("/tmp/p.yaml", text, errors, checkEnvironment: false);
        Assert.That(def, Is.Null);
        var byLine = errors.All.ToDictionary(e => e.Line, e => e.Message);
        Assert.Multiple(() =>
        {
            Assert.That(byLine[1], Does.Contain("not a valid pipeline name"));
            Assert.That(byLine[3], Does.Contain("not a valid Quartz cron"));
            Assert.That(byLine[5], Does.Contain("without user or password"));
            Assert.That(byLine[6], Does.Contain("not a valid regular expression"));
            Assert.That(byLine[10], Does.Contain("not a usable SSH public key"));
            Assert.That(byLine[15], Does.Contain("pinned by digest"));
            Assert.That(byLine[16], Is.EqualTo("unknown key 'extra'"));
        });
        // A secret written into a URL must not be echoed back in an error.
        Assert.That(errors.All.Select(e => e.ToString()), Has.None.Contains("secret"));
    }

    [Test]
    public void Missing_files_are_reported_when_the_environment_is_checked()
    {
        using var dir = new TempDir();
        var file = dir.Combine("app.yaml");
        var text = File.ReadAllText(Path.Combine(TestServices.RepoRoot, "pipelines", "fachverfahren-beispiel.yaml"))
            .Replace("name: fachverfahren-beispiel", "name: app");
        File.WriteAllText(file, text);
        Assert.That(PipelineDefinitionLoader.Load(file, checkEnvironment: false).Name, Is.EqualTo("app"));
        var e = Assert.Throws<ConfigurationException>(() => PipelineDefinitionLoader.Load(file, checkEnvironment: true))!;
        Assert.That(e.Errors.Single().Message, Does.Contain("supplier-beispiel.cred").And.Contain("does not exist"));
    }

    [Test]
    public void Two_definitions_with_one_name_are_refused()
    {
        using var dir = new TempDir();
        var text = File.ReadAllText(Path.Combine(TestServices.RepoRoot, "pipelines", "fachverfahren-beispiel.yaml"));
        File.WriteAllText(dir.Combine("fachverfahren-beispiel.yaml"), text);
        File.WriteAllText(dir.Combine("fachverfahren-beispiel.yml"), text);
        var e = Assert.Throws<ConfigurationException>(() => PipelineDefinitionLoader.LoadFolder(dir.Path, checkEnvironment: false))!;
        Assert.That(e.Errors.Single().Message, Does.Contain("already used"));
    }
}
