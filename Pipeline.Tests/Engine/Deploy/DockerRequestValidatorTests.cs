using Pipeline.Engine.Deploy.Docker;

namespace Pipeline.Tests.Engine.Deploy;

/// <summary>What a docker stage accepts from a delivery (hostile input): images pinned by digest in the stage's registry only.</summary>
public class DockerRequestValidatorTests
{
    private const string Registry = "127.0.0.1:5000";
    private static readonly string Hex = new('a', 64);

    [TestCase("127.0.0.1:5000/apps/hello@sha256:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true, "")]
    [TestCase("127.0.0.1:5000/apps/hello:1.0", false, "must be pinned by digest")]
    [TestCase("127.0.0.1:5000/apps/hello:1.0@sha256:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "invalid repository name")]
    [TestCase("127.0.0.1:5000.evil.example/apps/hello@sha256:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "not in the stage's registry")]
    [TestCase("docker.io/library/busybox@sha256:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "not in the stage's registry")]
    [TestCase("127.0.0.1:5000/apps/hello@sha256:AAAA", false, "@sha256:<64 hex digits>")]
    [TestCase("127.0.0.1:5000/apps/hello@sha512:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "@sha256:<64 hex digits>")]
    [TestCase("127.0.0.1:5000/Apps/hello@sha256:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "invalid repository name")]
    [TestCase("127.0.0.1:5000/@sha256:" + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false, "invalid repository name")]
    public void Images_must_be_pinned_by_sha256_in_the_stage_registry(string image, bool ok, string why)
    {
        Assert.That(DockerRequestValidator.TryParseImage(image, Registry, out var parsed, out var reason), Is.EqualTo(ok), reason);
        if (ok) Assert.That(parsed.Repository, Is.EqualTo("apps/hello"));
        else Assert.That(reason, Does.Contain(why));
    }

    [Test]
    public void Names_commands_environment_and_exit_codes_are_checked_all_at_once()
    {
        var image = $"{Registry}/apps/hello@sha256:{Hex}";
        var request = new DockerRunRequest
        {
            DeliveryId = "d\n1",
            Stage = "vorpruefung",
            App = new("app", image, Environment: new Dictionary<string, string> { ["LD_PRELOAD=x"] = "1", ["OK"] = "a\0b" }),
            Test = new("test", image, Healthcheck: Enumerable.Repeat("x", 65).ToList()),
            Mocks = Enumerable.Range(0, 9).Select(i => new DockerContainerSpec($"mock{i}", image)).ToList(),
            PassExitCodes = [0, 256],
            TestTimeout = TimeSpan.Zero,
        };
        var problems = DockerRequestValidator.Validate(request, new DockerStageSettings { Endpoint = "unix:///x.sock", Registry = Registry });
        Assert.That(string.Join("\n", problems), Does.Contain("deliveryId must be 1 to 200 printable characters")
            .And.Contain("at most 8 mocks")
            .And.Contain("environment name 'LD_PRELOAD=x'")
            .And.Contain("environment value of 'OK'")
            .And.Contain("test 'test' healthcheck must have 1 to 64 arguments")
            .And.Contain("passExitCodes must be between 0 and 255")
            .And.Contain("the test timeout must be positive"));
        Assert.That(problems, Has.Count.EqualTo(7));
    }
}
