using Pipeline.Engine.Configuration;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Configuration;

public class EngineExampleTests
{
    [Test]
    public void The_shipped_engine_example_is_valid_apart_from_files_that_exist_only_at_an_operator()
    {
        var file = Path.Combine(TestServices.RepoRoot, "engine.example.yaml");
        var errors = new ConfigErrors();
        EngineSettingsLoader.Parse(file, File.ReadAllText(file), errors);
        Assert.That(errors.All.Where(e => !e.Message.Contains("does not exist", StringComparison.Ordinal)).Select(e => e.ToString()), Is.Empty);
    }
}
