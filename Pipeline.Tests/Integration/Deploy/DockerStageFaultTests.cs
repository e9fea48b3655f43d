using Docker.DotNet;
using Pipeline.Engine;
using Pipeline.Engine.Deploy.Docker;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// Faults and boundaries of the docker stage: an unreachable engine, root refused, bad settings
/// and requests (every problem at once), an image missing from the registry, the sweep of a
/// crashed run's leftovers, and a second dockerd on its own socket as a second security zone.
/// </summary>
[Category("Integration")]
public class DockerStageFaultTests
{
    private string _registry = "";
    private string _docker = "";
    private string _repo = "";
    private string _image = "";
    private string _rootImage = "";
    private TempDir? _work;
    private DockerClient? _client;

    [OneTimeSetUp]
    public async Task PushImages()
    {
        _registry = TestServices.Require("PIPELINE_REGISTRY");
        _docker = TestServices.Require("PIPELINE_DOCKER_HOST");
        _work = new TempDir("pl-docker-fault-");
        File.SetUnixFileMode(_work.Path, (UnixFileMode)0x1ED);
        _repo = "pipeline-tests/docker-" + Guid.NewGuid().ToString("N")[..8];
        _image = await DockerTestImages.PushBusyboxAsync(_registry, _work.Path, _repo + "/bb", DockerTestImages.User);
        _rootImage = await DockerTestImages.PushBusyboxAsync(_registry, _work.Path, _repo + "/rootbb", null);
        _client = DockerTestImages.Client(_docker);
    }

    [OneTimeTearDown]
    public void Cleanup()
    {
        if (_docker.Length > 0) DockerTestImages.RemoveImages(_docker, _image, _rootImage);
        _client?.Dispose();
        _work?.Dispose();
    }

    private DockerRunRequest Request(string delivery, string? appImage = null) => new()
    {
        DeliveryId = delivery,
        Stage = "vorpruefung",
        App = new("app", appImage ?? _image, DockerTestImages.Sh("exec /bin/busybox sleep 600")),
        Test = new("acceptance", _image, ["/bin/busybox", "true"]),
    };

    private static string NewDelivery() => "d-" + Guid.NewGuid().ToString("N")[..12];

    [Test]
    public async Task An_engine_that_is_not_there_is_our_outage_not_the_suppliers_fault()
    {
        using var closed = new ClosedPort();
        foreach (var endpoint in new[] { "unix://" + _work!.Combine("no-such-docker.sock"), closed.Endpoint })
        {
            using var runner = new DockerStageRunner(DockerTestImages.Settings(endpoint, _registry) with { EngineTimeout = TimeSpan.FromSeconds(5) },
                TimeProvider.System, Serilog.Core.Logger.None);
            var result = await runner.RunAsync(Request(NewDelivery()), CancellationToken.None);
            Assert.That(result.Code, Is.EqualTo(DockerCodes.Unreachable), result.Message);
            Assert.That(result.IsTransient, Is.True, "retry later; the delivery is not rejected");
            Assert.That(result.Passed, Is.False);
            Assert.That(result.Message, Does.Contain(endpoint).And.Contain("outage on the operator's side"));
            Assert.That(async () => await runner.SweepAsync(null, null, CancellationToken.None),
                Throws.InstanceOf<PipelineException>().With.Property(nameof(PipelineException.Code)).EqualTo(DockerCodes.Unreachable));
        }
    }

    [Test]
    public async Task An_image_without_a_non_root_user_is_refused_before_anything_starts()
    {
        var delivery = NewDelivery();
        using var runner = new DockerStageRunner(DockerTestImages.Settings(_docker, _registry) with { User = null }, TimeProvider.System, Serilog.Core.Logger.None);
        var result = await runner.RunAsync(Request(delivery, _rootImage), CancellationToken.None);
        Assert.That(result.Code, Is.EqualTo(DockerCodes.RootRefused), result.Message);
        Assert.That(result.Message, Does.Contain(_rootImage).And.Contain("is empty, which means root"));
        Assert.That(result.Message, Does.Not.Contain(_image + ":"), "the image declaring 10001:10001 is fine");
        Assert.That(result.Containers, Is.Empty, "nothing was created");
        Assert.That(await DockerTestImages.ContainersOf(_client!, delivery), Is.Empty);
    }

    [Test]
    public void Settings_with_root_and_other_mistakes_are_refused_all_at_once()
    {
        var bad = DockerTestImages.Settings("http://127.0.0.1:2375", _registry) with { User = "0:0", MemoryBytes = 1024, Network = "Bad Net", Cpus = 0 };
        var e = Assert.Throws<PipelineException>(() => new DockerStageRunner(bad, TimeProvider.System, Serilog.Core.Logger.None))!;
        Assert.That(e.Code, Is.EqualTo("DEPLOY-DOCKER-SETTINGS"));
        Assert.That(e.Message, Does.Contain("endpoint 'http://127.0.0.1:2375' must be unix:///absolute/path or tcp://host:port")
            .And.Contain("user '0:0' is root").And.Contain("memory must be at least 6 MiB").And.Contain("network 'Bad Net'").And.Contain("cpus must be"));
        Assert.That(DockerStageSettings.IsNonRootUser("app", out var why), Is.False, "names could map to root inside the image");
        Assert.That(why, Does.Contain("numeric"));
        Assert.That(DockerStageSettings.IsNonRootUser("10001:0", out _), Is.False, "gid 0 is refused too");
        Assert.That(DockerStageSettings.IsNonRootUser("10001", out _), Is.True);
    }

    [Test]
    public async Task A_request_that_is_not_pinned_or_not_from_the_stage_registry_is_refused_with_every_problem()
    {
        var delivery = NewDelivery();
        using var runner = new DockerStageRunner(DockerTestImages.Settings(_docker, _registry), TimeProvider.System, Serilog.Core.Logger.None);
        var request = Request(delivery) with
        {
            App = new("app", $"{_registry}/{_repo}/bb:latest"),
            Test = new("Bad_Name", "evil.example.com/x@sha256:" + new string('a', 64), [""]),
            Mocks = [new("app", _image)],
            PassExitCodes = [],
            TestDataPath = "relative/data",
        };
        var result = await runner.RunAsync(request, CancellationToken.None);
        Assert.That(result.Code, Is.EqualTo(DockerCodes.Request));
        Assert.That(result.Message, Does.Contain("must be pinned by digest")
            .And.Contain("is not in the stage's registry")
            .And.Contain("name must match")
            .And.Contain("name is used twice")
            .And.Contain("the program must not be empty")
            .And.Contain("passExitCodes must name at least one exit code")
            .And.Contain("must be an absolute path"));
        Assert.That(result.Containers, Is.Empty);
        Assert.That(await DockerTestImages.ContainersOf(_client!, delivery), Is.Empty);
    }

    [Test]
    public async Task An_image_missing_from_the_registry_fails_the_pull()
    {
        var delivery = NewDelivery();
        var missing = $"{_registry}/{_repo}/bb@sha256:{new string('0', 64)}";
        using var runner = new DockerStageRunner(DockerTestImages.Settings(_docker, _registry), TimeProvider.System, Serilog.Core.Logger.None);
        var result = await runner.RunAsync(Request(delivery, missing), CancellationToken.None);
        Assert.That(result.Code, Is.EqualTo(DockerCodes.Pull), result.Message);
        Assert.That(result.Message, Does.Contain(missing));
        Assert.That(result.IsTransient, Is.False, "the registry answered: the image is not there");
        Assert.That(result.Containers, Is.Empty);
    }

    [Test]
    public async Task Sweep_removes_a_crashed_runs_containers_and_network_by_label_and_nothing_else()
    {
        TestServices.RequireTool("docker", "docker.io");
        var crashed = NewDelivery();
        var other = NewDelivery();
        Shell.Run("docker", ["-H", _docker, "pull", _image]).EnsureSuccess("docker pull");
        string Labels(string d) => $"--label=pipeline.run=r{d}|--label=pipeline.delivery={d}|--label=pipeline.stage=vorpruefung";
        Shell.Run("docker", ["-H", _docker, "network", "create", "--internal", .. Labels(crashed).Split('|'), "net-" + crashed]).EnsureSuccess("network create");
        foreach (var d in new[] { crashed, crashed, other })
            Shell.Run("docker", ["-H", _docker, "run", "-d", "--network", "none", .. Labels(d).Split('|'), _image, "/bin/busybox", "sleep", "600"]).EnsureSuccess("docker run");

        using var runner = new DockerStageRunner(DockerTestImages.Settings(_docker, _registry), TimeProvider.System, Serilog.Core.Logger.None);
        var swept = await runner.SweepAsync(crashed, "vorpruefung", CancellationToken.None);
        Assert.That(swept.RemovedContainers, Has.Count.EqualTo(2));
        Assert.That(swept.RemovedNetworks, Is.EqualTo(new[] { "net-" + crashed }));
        Assert.That(await DockerTestImages.ContainersOf(_client!, crashed), Is.Empty);
        Assert.That(await DockerTestImages.NetworksOf(_client!, crashed), Is.Empty);
        Assert.That(await DockerTestImages.ContainersOf(_client!, other), Has.Count.EqualTo(1), "another delivery's container is untouched");
        Assert.That((await runner.SweepAsync(other, null, CancellationToken.None)).RemovedContainers, Has.Count.EqualTo(1));
        Assert.That(await DockerTestImages.ContainersOf(_client!, other), Is.Empty);
    }

    [Test]
    public async Task A_second_dockerd_on_its_own_socket_is_a_separate_zone()
    {
        using var zone = await ThrowAwayDockerd.StartAsync(_registry);
        var zoneImage = await DockerTestImages.PushBusyboxAsync(_registry, _work!.Path, _repo + "/zone", DockerTestImages.User,
            new Dictionary<string, string> { ["zone"] = Guid.NewGuid().ToString("N") });
        var delivery = NewDelivery();
        using var runner = new DockerStageRunner(DockerTestImages.Settings(zone.Endpoint, _registry), TimeProvider.System, Serilog.Core.Logger.None);
        var result = await runner.RunAsync(Request(delivery, zoneImage) with
        {
            App = new("app", zoneImage, DockerTestImages.Sh("exec /bin/busybox sleep 600")),
            Test = new("acceptance", zoneImage, DockerTestImages.Sh("echo zone-b")),
        }, CancellationToken.None);
        Assert.That(result.Code, Is.EqualTo(DockerCodes.Passed), result.Message);
        Assert.That(result.Of(DockerContainerRole.Test)!.LogExcerpt, Is.EqualTo("zone-b\n"));

        using var zoneClient = DockerTestImages.Client(zone.Endpoint);
        Assert.That((await zoneClient.Images.InspectImageAsync(zoneImage)).RepoDigests, Does.Contain(zoneImage), "pulled into the second zone");
        Assert.That(async () => await _client!.Images.InspectImageAsync(zoneImage), Throws.InstanceOf<DockerImageNotFoundException>(), "never into the first");
        Assert.That(await DockerTestImages.ContainersOf(zoneClient, delivery), Is.Empty);
    }

    [Test]
    public async Task A_registry_that_never_answers_fails_the_pull_at_its_deadline_as_an_outage()
    {
        // A listener that never accepts: the kernel completes the connection, nobody ever answers.
        var hung = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        hung.Start();
        try
        {
            var registry = $"127.0.0.1:{((System.Net.IPEndPoint)hung.LocalEndpoint).Port}";
            using var zone = await ThrowAwayDockerd.StartAsync(registry);
            var settings = DockerTestImages.Settings(zone.Endpoint, registry) with { PullTimeout = TimeSpan.FromSeconds(2) };
            using var runner = new DockerStageRunner(settings, TimeProvider.System, Serilog.Core.Logger.None);
            var image = $"{registry}/apps/hello@sha256:{new string('a', 64)}";
            var started = DateTime.UtcNow;
            var result = await runner.RunAsync(new DockerRunRequest
            {
                DeliveryId = NewDelivery(),
                Stage = "vorpruefung",
                App = new("app", image),
                Test = new("acceptance", image),
            }, CancellationToken.None);
            Assert.That(result.Code, Is.EqualTo(DockerCodes.Pull), result.Message);
            Assert.That(result.Message, Does.Contain("did not finish within 2 s"));
            Assert.That(result.IsTransient, Is.True, "a hung registry is our outage");
            Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(20)));
        }
        finally
        {
            hung.Stop();
        }
    }
}
