using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Checkup.Sigstore;

/// <summary>
/// The sigstore-conformance runner (not ours) drives our real <c>pipeline verify-bundle</c>
/// executable over every shared case, in file and digest mode. Cases without their own root use
/// the production trusted root that the setup scripts installed from @sigstore/tuf.
/// </summary>
[Category("Integration")]
public class ConformanceRunnerTests
{
    [Test]
    public void Every_conformance_case_passes_through_the_real_command_line()
    {
        var runner = TestServices.RequireShared("tools/sigstore-conformance/run-conformance.py");
        var assets = TestServices.RequireShared("vectors/sigstore-conformance");
        var root = TestServices.Require("PIPELINE_SIGSTORE_DEFAULT_ROOT");
        var exe = Path.Combine(AppContext.BaseDirectory, "pipeline");
        Assert.That(File.Exists(exe), Is.True, "the engine's executable is copied beside the tests");

        var result = Shell.Run("python3", [runner, exe, assets, "--digest"],
            env: new Dictionary<string, string> { ["PIPELINE_SIGSTORE_DEFAULT_ROOT"] = root }, timeout: TimeSpan.FromMinutes(5));

        var cases = Directory.GetDirectories(Path.Combine(assets, "bundle-verify")).Length;
        Assert.That(result.Stdout, Does.Contain($"\n{cases * 2} passed, 0 failed"), result.Stdout);
        Assert.That(result.ExitCode, Is.Zero);
    }

    [Test]
    public void The_installed_default_root_is_the_public_good_production_root()
    {
        var root = TestServices.Require("PIPELINE_SIGSTORE_DEFAULT_ROOT");
        var shared = TestServices.RequireShared("vectors/sigstore-conformance/production_trusted_root.json");
        var a = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(root));
        var b = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(shared));
        Assert.That(System.Text.Json.Nodes.JsonNode.DeepEquals(a, b), Is.True, "the root from @sigstore/tuf should equal the production root of the conformance suite");
    }
}
