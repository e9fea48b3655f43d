using Docker.DotNet;
using Docker.DotNet.Models;
using Pipeline.Engine.Deploy.Docker;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// While a run is in progress: what the engine reports about its containers (inspect) and what
/// a process inside sees (docker exec: read-only root, uid, capabilities, no_new_privs, read-only
/// test data); then the run is cancelled and the engine has nothing of it left.
/// </summary>
[Category("Integration")]
public class DockerStageHardeningTests
{
    private string _registry = "";
    private string _docker = "";
    private string _image = "";
    private TempDir? _work;
    private DockerClient? _client;

    [OneTimeSetUp]
    public async Task PushImage()
    {
        _registry = TestServices.Require("PIPELINE_REGISTRY");
        _docker = TestServices.Require("PIPELINE_DOCKER_HOST");
        TestServices.RequireTool("docker", "docker.io");
        _work = new TempDir("pl-docker-hard-");
        File.SetUnixFileMode(_work.Path, (UnixFileMode)0x1ED);
        _image = await DockerTestImages.PushBusyboxAsync(_registry, _work.Path, "pipeline-tests/docker-" + Guid.NewGuid().ToString("N")[..8] + "/bb", DockerTestImages.User);
        Directory.CreateDirectory(_work.Combine("testdata"));
        await File.WriteAllTextAsync(_work.Combine("testdata", "index.html"), "hello-from-app\n");
        _client = DockerTestImages.Client(_docker);
    }

    [OneTimeTearDown]
    public void Cleanup()
    {
        if (_docker.Length > 0) DockerTestImages.RemoveImages(_docker, _image);
        _client?.Dispose();
        _work?.Dispose();
    }

    private Shell.Result Exec(string id, params string[] argv) => Shell.Run("docker", ["-H", _docker, "exec", id, .. argv]);

    [Test]
    public async Task Containers_run_hardened_and_a_cancelled_run_leaves_nothing_behind()
    {
        var delivery = "d-" + Guid.NewGuid().ToString("N")[..12];
        var settings = DockerTestImages.Settings(_docker, _registry);
        using var runner = new DockerStageRunner(settings, TimeProvider.System, Serilog.Core.Logger.None);
        var request = new DockerRunRequest
        {
            DeliveryId = delivery,
            Stage = "abnahme",
            App = new("app", _image, ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/testdata"], DockerTestImages.HttpHealth(8080, "/index.html")),
            Test = new("acceptance", _image, ["/bin/busybox", "sleep", "600"]),
            TestDataPath = _work!.Combine("testdata"),
        };
        using var cts = new CancellationTokenSource();
        var run = runner.RunAsync(request, cts.Token);

        // Wait (polling the engine, with a deadline) until the test container runs: app is healthy then.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        IList<ContainerListResponse> listed;
        while (true)
        {
            listed = await DockerTestImages.ContainersOf(_client!, delivery);
            if (listed.Any(c => c.Labels["pipeline.role"] == "test" && c.State == "running")) break;
            Assert.That(run.IsCompleted, Is.False, () => "the run ended early: " + run.Result.Message);
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), "the test container did not start within 60 s");
            await Task.Delay(100);
        }
        Assert.That(listed, Has.Count.EqualTo(2));

        foreach (var c in listed)
        {
            var inspect = await _client!.Containers.InspectContainerAsync(c.ID);
            var host = inspect.HostConfig;
            Assert.That(host.ReadonlyRootfs, Is.True, "read-only root");
            Assert.That(host.CapDrop, Is.EqualTo(new[] { "ALL" }));
            Assert.That(host.CapAdd ?? [], Is.Empty);
            Assert.That(host.SecurityOpt, Is.EqualTo(new[] { "no-new-privileges:true" }));
            Assert.That(host.Privileged, Is.False);
            Assert.That(host.Memory, Is.EqualTo(settings.MemoryBytes));
            Assert.That(host.MemorySwap, Is.EqualTo(settings.MemoryBytes), "no swap on top");
            Assert.That(host.NanoCPUs, Is.EqualTo(500_000_000));
            Assert.That(host.PidsLimit, Is.EqualTo(64));
            Assert.That(host.NetworkMode, Is.EqualTo("none"));
            Assert.That(host.Tmpfs.Keys, Is.EqualTo(new[] { "/tmp" }));
            Assert.That(host.Binds ?? [], Is.Empty);
            Assert.That(inspect.Mounts.Select(m => (m.Type, m.Destination, m.RW)), Is.EqualTo(new[] { ("bind", "/testdata", false) }).Or.EqualTo(new[] { ("tmpfs", "/tmp", true), ("bind", "/testdata", false) }).Or.EqualTo(new[] { ("bind", "/testdata", false), ("tmpfs", "/tmp", true) }),
                "the only host mount is the read-only test data");
            Assert.That(inspect.Config.User, Is.EqualTo(DockerTestImages.User));
            Assert.That(inspect.Config.Labels["pipeline.delivery"], Is.EqualTo(delivery));
            Assert.That(inspect.Config.Labels["pipeline.stage"], Is.EqualTo("abnahme"));
            Assert.That(inspect.Config.Image, Is.EqualTo(_image), "started by digest");
        }

        // What a process inside sees.
        var app = listed.Single(c => c.Labels["pipeline.role"] == "app").ID;
        Assert.That(Exec(app, "/bin/busybox", "id", "-u").Stdout.Trim(), Is.EqualTo("10001"));
        var touch = Exec(app, "/bin/busybox", "touch", "/probe");
        Assert.That(touch.ExitCode, Is.Not.Zero);
        Assert.That(touch.Stderr, Does.Contain("Read-only file system"));
        var data = Exec(app, "/bin/busybox", "touch", "/testdata/probe");
        Assert.That(data.Stderr, Does.Contain("Read-only file system"), "the test data is mounted read-only");
        Assert.That(Exec(app, "/bin/busybox", "cat", "/testdata/index.html").Stdout, Is.EqualTo("hello-from-app\n"));
        var status = Exec(app, "/bin/busybox", "cat", "/proc/self/status").Stdout;
        Assert.That(status, Does.Match(@"CapEff:\s+0000000000000000"), "no effective capabilities");
        Assert.That(status, Does.Match(@"CapBnd:\s+0000000000000000"), "no capabilities in the bounding set");
        Assert.That(status, Does.Match(@"NoNewPrivs:\s+1"));
        Exec(app, "/bin/sh", "-c", "echo '#!/bin/sh' > /tmp/x && /bin/busybox chmod +x /tmp/x").EnsureSuccess("write to /tmp");
        Assert.That(Exec(app, "/tmp/x").ExitCode, Is.Not.Zero, "/tmp is noexec");

        await cts.CancelAsync();
        Assert.That(async () => await run, Throws.InstanceOf<OperationCanceledException>());
        Assert.That(await DockerTestImages.ContainersOf(_client!, delivery), Is.Empty, "cancellation removed every container");
    }
}
