using System.Text.RegularExpressions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Deploy;

/// <summary>
/// The engine's own image, built in the suite without Docker and without public registries
/// (<c>scripts/engine-image.sh</c>: this build's engine plus this machine's .NET runtime and the libraries ldd names,
/// pushed by <c>pipeline base-image</c>), then run by the real dockerd as 10001:10001 with a read-only root.
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class EngineImageTests
{
    [Test]
    public void The_engine_image_built_from_local_files_runs_as_non_root_on_a_read_only_root_and_answers()
    {
        TestServices.Require("PIPELINE_DOCKER_HOST");
        TestServices.Require("PIPELINE_REGISTRY");
        // This test's own build of the engine (bin/<Configuration>/net10.0 next to the tests' output).
        var tests = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        var build = Path.Combine(TestServices.RepoRoot, "Pipeline.Engine", "bin", tests.Parent!.Name, tests.Name);
        Assert.That(File.Exists(Path.Combine(build, "pipeline")), Is.True, build);

        var r = Shell.Run("bash", [Path.Combine(TestServices.RepoRoot, "scripts", "engine-image.sh")],
            env: new Dictionary<string, string> { ["PIPELINE_ENGINE_BUILD"] = build }, timeout: TimeSpan.FromMinutes(4));
        var output = r.Stdout + r.Stderr;
        Assert.That(r.ExitCode, Is.Zero, output);
        Assert.That(output, Does.Contain("pipeline --version (uid 10001, read-only root): 1."));
        Assert.That(output, Does.Contain("pipeline check: configuration OK: /etc/pipeline/engine.yaml, 1 pipeline(s): fachverfahren-beispiel"));
        Assert.That(output, Does.Contain("engine image: OK"));

        // An independent reader of what our builder pushed.
        var pushed = Regex.Match(output, @"pushed (\S+@sha256:[0-9a-f]{64})");
        Assert.That(pushed.Success, Is.True, output);
        var inspect = Shell.Run("skopeo", ["inspect", "--tls-verify=false", "docker://" + pushed.Groups[1].Value]).EnsureSuccess("skopeo inspect");
        Assert.That(inspect.Stdout, Does.Contain("\"Architecture\": \"amd64\""));
    }
}
