using System.Security.Cryptography;
using System.Text;
using Docker.DotNet;
using Pipeline.Engine.Deploy.Docker;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// The docker stage against the real dockerd: images built by our code from busybox and pulled by
/// digest from the local registry; pass, failing test, hanging test, never-healthy app, hardening
/// seen by the engine and from inside the container, cleanup after cancellation. After every run
/// the engine is asked directly (list by label) that nothing is left.
/// </summary>
[Category("Integration")]
public class DockerStageRunnerTests
{
    private const string Stage = "Vorprüfung";
    private string _registry = "";
    private string _docker = "";
    private string _image = "";
    private string _testData = "";
    private TempDir? _work;
    private DockerClient? _client;

    [OneTimeSetUp]
    public async Task PushImages()
    {
        _registry = TestServices.Require("PIPELINE_REGISTRY");
        _docker = TestServices.Require("PIPELINE_DOCKER_HOST");
        _work = new TempDir("pl-docker-it-");
        _image = await DockerTestImages.PushBusyboxAsync(_registry, _work.Path, "pipeline-tests/docker-" + Guid.NewGuid().ToString("N")[..8] + "/bb", DockerTestImages.User);
        _testData = _work.Combine("testdata");
        Directory.CreateDirectory(Path.Combine(_testData, "mock"));
        await File.WriteAllTextAsync(Path.Combine(_testData, "index.html"), "hello-from-app\n");
        await File.WriteAllTextAsync(Path.Combine(_testData, "mock", "index.html"), "mock-answer\n");
        foreach (var dir in new[] { _work.Path, _testData, Path.Combine(_testData, "mock") })
            File.SetUnixFileMode(dir, (UnixFileMode)0x1ED);
        _client = DockerTestImages.Client(_docker);
    }

    [OneTimeTearDown]
    public void Cleanup()
    {
        if (_docker.Length > 0) DockerTestImages.RemoveImages(_docker, _image);
        _client?.Dispose();
        _work?.Dispose();
    }

    private static string NewDelivery() => "d-" + Guid.NewGuid().ToString("N")[..12];

    private DockerContainerSpec App(IReadOnlyList<string>? command = null, IReadOnlyList<string>? health = null) =>
        new("app", _image, command ?? ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/testdata"], health ?? DockerTestImages.HttpHealth(8080, "/index.html"));

    private DockerRunRequest Request(string delivery, DockerContainerSpec test, DockerContainerSpec? app = null) => new()
    {
        DeliveryId = delivery,
        Stage = Stage,
        App = app ?? App(),
        Test = test,
        TestDataPath = _testData,
    };

    private DockerStageRunner Runner(DockerStageSettings? settings = null) =>
        new(settings ?? DockerTestImages.Settings(_docker, _registry), TimeProvider.System, Serilog.Core.Logger.None);

    private async Task AssertNothingLeft(string delivery)
    {
        Assert.That(await DockerTestImages.ContainersOf(_client!, delivery), Is.Empty, "no container of the delivery is left");
        Assert.That(await DockerTestImages.NetworksOf(_client!, delivery), Is.Empty, "no network of the delivery is left");
    }

    [Test]
    public async Task Mock_app_and_test_on_a_stage_network_pass_with_log_evidence_and_nothing_left()
    {
        var delivery = NewDelivery();
        using var runner = Runner(DockerTestImages.Settings(_docker, _registry) with { Network = "stagenet" });
        var request = Request(delivery, new("acceptance", _image,
            DockerTestImages.Sh("/bin/busybox wget -q -O - http://app:8080/index.html && /bin/busybox wget -q -O - http://mock:9090/index.html && echo PASS"))) with
        {
            Mocks = [new("mock", _image, ["/bin/busybox", "httpd", "-f", "-p", "9090", "-h", "/testdata/mock"], DockerTestImages.HttpHealth(9090, "/index.html"))],
        };
        var result = await runner.RunAsync(request, CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.Passed), result.Message);
        Assert.That(result.Passed, Is.True);
        Assert.That(result.IsTransient, Is.False);
        Assert.That(result.CleanedUp, Is.True);
        Assert.That(result.Containers.Select(c => c.Role), Is.EqualTo(new[] { DockerContainerRole.Mock, DockerContainerRole.App, DockerContainerRole.Test }));
        Assert.That(result.Containers.Take(2).Select(c => c.Health), Is.All.EqualTo("healthy"), "mock and app passed their healthchecks");
        Assert.That(result.Of(DockerContainerRole.App)!.ReadyAt, Is.Not.Null);
        var test = result.Of(DockerContainerRole.Test)!;
        Assert.That(test.ExitCode, Is.Zero);
        Assert.That(test.LogExcerpt, Is.EqualTo("hello-from-app\nmock-answer\nPASS\n"), "the test reached app and mock by name");
        Assert.That(test.LogDigest, Is.EqualTo("sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(test.LogExcerpt)))));
        Assert.That(test.LogBytes, Is.EqualTo(test.LogExcerpt.Length));
        Assert.That(test.LogTruncated, Is.False);
        Assert.That(test.Image, Is.EqualTo(_image));
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task A_failing_test_is_reported_with_its_exit_code_and_output()
    {
        var delivery = NewDelivery();
        using var runner = Runner();
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, DockerTestImages.Sh("echo 'expected 2 rows, got 3' >&2; exit 3"))), CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.TestFailed), result.Message);
        Assert.That(result.Passed, Is.False);
        Assert.That(result.Message, Does.Contain("exit code 3").And.Contain("pass is 0"));
        var test = result.Of(DockerContainerRole.Test)!;
        Assert.That(test.ExitCode, Is.EqualTo(3));
        Assert.That(test.LogExcerpt, Does.Contain("expected 2 rows, got 3"), "stderr is part of the evidence");
        Assert.That(result.CleanedUp, Is.True);
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task A_hanging_test_is_killed_at_its_timeout_and_nothing_is_left_running()
    {
        var delivery = NewDelivery();
        using var runner = Runner();
        var started = DateTime.UtcNow;
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, ["/bin/busybox", "sleep", "600"])) with { TestTimeout = TimeSpan.FromSeconds(2) },
            CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.TestTimeout), result.Message);
        Assert.That(result.Message, Does.Contain("within 2 s"));
        Assert.That(result.Of(DockerContainerRole.Test)!.ExitCode, Is.EqualTo(137), "killed with SIGKILL");
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(40)));
        Assert.That(result.CleanedUp, Is.True);
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task An_app_that_never_becomes_healthy_fails_at_the_health_deadline_and_the_test_never_starts()
    {
        var delivery = NewDelivery();
        using var runner = Runner(DockerTestImages.Settings(_docker, _registry) with { HealthTimeout = TimeSpan.FromSeconds(2) });
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, ["/bin/busybox", "true"]), App(health: ["/bin/busybox", "sleep", "100"])),
            CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.Unhealthy), result.Message);
        Assert.That(result.Message, Does.Contain("app 'app' (status starting) did not become healthy within 2 s"));
        Assert.That(result.Containers.Select(c => c.Role), Is.EqualTo(new[] { DockerContainerRole.App }), "the test was never started");
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task An_app_whose_healthcheck_fails_is_unhealthy_with_the_probe_output()
    {
        var delivery = NewDelivery();
        using var runner = Runner();
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, ["/bin/busybox", "true"]),
            App(health: DockerTestImages.Sh("echo database not reachable; exit 1"))), CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.Unhealthy), result.Message);
        Assert.That(result.Message, Does.Contain("reported unhealthy").And.Contain("database not reachable"));
        Assert.That(result.Of(DockerContainerRole.App)!.Health, Is.EqualTo("unhealthy"));
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task An_app_that_exits_before_it_is_healthy_is_reported_with_exit_code_and_log()
    {
        var delivery = NewDelivery();
        using var runner = Runner();
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, ["/bin/busybox", "true"]),
            App(command: DockerTestImages.Sh("echo cannot open config; exit 7"))), CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.Unhealthy), result.Message);
        Assert.That(result.Message, Does.Contain("exited with code 7 before it became healthy"));
        var app = result.Of(DockerContainerRole.App)!;
        Assert.That(app.ExitCode, Is.EqualTo(7));
        Assert.That(app.LogExcerpt, Is.EqualTo("cannot open config\n"));
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task Log_evidence_is_the_last_bytes_up_to_the_cap_and_says_it_was_cut()
    {
        var delivery = NewDelivery();
        using var runner = Runner(DockerTestImages.Settings(_docker, _registry) with { LogByteCap = 1024 });
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, DockerTestImages.Sh("/bin/busybox seq -s ' ' 1 3000; echo END"))), CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.Passed), result.Message);
        var output = Encoding.ASCII.GetBytes(string.Join(' ', Enumerable.Range(1, 3000)) + "\nEND\n");
        var test = result.Of(DockerContainerRole.Test)!;
        Assert.That(test.LogTruncated, Is.True);
        Assert.That(test.LogBytes, Is.EqualTo(1024));
        Assert.That(test.LogDigest, Is.EqualTo("sha256:" + Convert.ToHexStringLower(SHA256.HashData(output.AsSpan(output.Length - 1024)))), "the digest covers the last 1024 bytes");
        Assert.That(test.LogExcerpt, Is.EqualTo(Encoding.ASCII.GetString(output, output.Length - 1024, 1024)));
        await AssertNothingLeft(delivery);
    }

    [Test]
    public async Task The_images_own_healthcheck_is_used_with_the_stages_timing()
    {
        var delivery = NewDelivery();
        var image = await DockerTestImages.PushBusyboxAsync(_registry, _work!.Path, "pipeline-tests/docker-" + Guid.NewGuid().ToString("N")[..8] + "/health",
            DockerTestImages.User, healthcheck: ["/bin/busybox", "test", "-e", "/tmp/ready"]);
        using var runner = Runner();
        var app = new DockerContainerSpec("app", image, DockerTestImages.Sh("/bin/busybox sleep 1; /bin/busybox touch /tmp/ready; exec /bin/busybox sleep 600"));
        var started = DateTime.UtcNow;
        var result = await runner.RunAsync(Request(delivery, new("acceptance", _image, ["/bin/busybox", "true"]), app), CancellationToken.None);

        Assert.That(result.Code, Is.EqualTo(DockerCodes.Passed), result.Message);
        Assert.That(result.Of(DockerContainerRole.App)!.Health, Is.EqualTo("healthy"), "the image's healthcheck ran");
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(25)), "at the stage's interval, not Docker's default of 30 s");
        await AssertNothingLeft(delivery);
        DockerTestImages.RemoveImages(_docker, image);
    }
}
