using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Definitions;

/// <summary><c>images.allowRoot</c> in the pipeline definition: off by default, on only when written down.</summary>
public class DeliveryManifestAllowRootSettingTests
{
    private static string Shipped() => File.ReadAllText(Path.Combine(TestServices.RepoRoot, "pipelines", "fachverfahren-beispiel.yaml"));

    private static PipelineDefinition? Parse(string text, ConfigErrors errors) =>
        PipelineDefinitionLoader.Parse("/tmp/fachverfahren-beispiel.yaml", text, errors, checkEnvironment: false);

    [Test]
    public void Root_is_not_allowed_by_default()
    {
        var errors = new ConfigErrors();
        var def = Parse(Shipped(), errors);
        Assert.That(errors.All, Is.Empty);
        Assert.That(def!.Images.AllowRoot, Is.False);
    }

    [Test]
    public void Root_can_be_allowed_explicitly_and_the_value_must_be_a_boolean()
    {
        var errors = new ConfigErrors();
        var def = Parse(Shipped().Replace("  repositoryPrefix: apps/beispiel", "  repositoryPrefix: apps/beispiel\n  allowRoot: true"), errors);
        Assert.That(errors.All, Is.Empty);
        Assert.That(def!.Images.AllowRoot, Is.True);

        var bad = new ConfigErrors();
        Assert.That(Parse(Shipped().Replace("  repositoryPrefix: apps/beispiel", "  repositoryPrefix: apps/beispiel\n  allowRoot: sometimes"), bad), Is.Null);
        Assert.That(bad.All.Single().Message, Does.Contain("allowRoot"));
    }
}
