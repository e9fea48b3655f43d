using Pipeline.Engine.Configuration;
using Pipeline.Engine.Deploy.Docker;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Deploy;

/// <summary>The docker stage block of the operator's configuration: the README's example and every error at once.</summary>
public class DockerStageSettingsReaderTests
{
    [Test]
    public void The_readme_example_reads_into_the_documented_settings()
    {
        var readme = File.ReadAllText(Path.Combine(TestServices.RepoRoot, "README.md"));
        var start = readme.IndexOf("  ```yaml\n  endpoint: unix:///run/docker-vorpruefung", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThan(0), "the README shows the example");
        var block = readme[(start + "  ```yaml\n".Length)..];
        block = block[..block.IndexOf("  ```", StringComparison.Ordinal)];
        var yaml = string.Join('\n', block.Split('\n').Select(l => l.Length >= 2 ? l[2..] : l));

        var errors = new ConfigErrors();
        var settings = DockerStageSettingsReader.Read(YamlReader.Load("stages.yaml", yaml, errors)!);
        Assert.That(errors.All, Is.Empty, () => string.Join("\n", errors.All));
        Assert.That(settings, Is.EqualTo(new DockerStageSettings
        {
            Endpoint = "unix:///run/docker-vorpruefung/docker.sock",
            Registry = "registry.vorpruefung.internal:5000",
            Network = "vp-net",
            MemoryBytes = 256L * 1024 * 1024,
            Cpus = 1.0,
            PidsLimit = 128,
            User = "10001:10001",
            HealthTimeout = TimeSpan.FromSeconds(60),
            TestTimeout = TimeSpan.FromSeconds(600),
            LogByteCap = 1024 * 1024,
        }));
    }

    [Test]
    public void Every_mistake_is_reported_with_file_and_line()
    {
        const string yaml = """
            endpoint: http://docker.internal
            registry: 127.0.0.1:5000
            user: "0"
            cpus: lots
            pidsLimit: 0
            netwrk: none
            """;
        var errors = new ConfigErrors();
        var settings = DockerStageSettingsReader.Read(YamlReader.Load("stages.yaml", yaml, errors)!);
        Assert.That(settings, Is.Null);
        var text = string.Join("\n", errors.All);
        Assert.That(text, Does.Contain("'cpus' must be a number").And.Contain("'pidsLimit' must be a whole number").And.Contain("unknown key 'netwrk'"));
        Assert.That(errors.All.Select(e => (e.File, e.Line)), Does.Contain(("stages.yaml", 4)).And.Contain(("stages.yaml", 6)));

        errors = new ConfigErrors();
        settings = DockerStageSettingsReader.Read(YamlReader.Load("stages.yaml", "endpoint: http://docker.internal\nregistry: 127.0.0.1:5000\nuser: \"0\"\n", errors)!);
        Assert.That(settings, Is.Null);
        text = string.Join("\n", errors.All);
        Assert.That(text, Does.Contain("endpoint 'http://docker.internal' must be unix:///absolute/path or tcp://host:port").And.Contain("user '0' is root"));
    }
}
