using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cluster;

/// <summary>
/// The fault suite's service faults, across two engine nodes (<c>pipeline run</c> processes with
/// their own work folders on one database). Every service that is broken is a private instance
/// of this fixture (PostgreSQL cluster, clamd, registry, VCS B), started once for all tests: the
/// shared services other tests use are never stopped. Node a is paused at an exact point of the
/// delivery (<see cref="UnsafeTestFault"/>), the service is killed there, in the middle of the
/// stage where it is the service's own log that shows the stage has begun talking to it, and node
/// a goes on. Then node b finishes the delivery; the end state is asserted
/// (<see cref="FaultScenario.AssertExactlyOnceAsync"/>).
/// </summary>
[Category("Integration")]
[NonParallelizable]
public partial class ServiceFaultTests
{
    private DeliveryHarness _harness = null!;
    private TempDir _dir = null!;
    private PrivatePostgres _pg = null!;
    private LoggingClamd _clamd = null!;
    private RestartableRegistry _registry = null!;
    private PrivateGitServer _vcsB = null!;

    [OneTimeSetUp]
    public async Task StartPrivateServices()
    {
        _harness = await DeliveryHarness.CreateAsync();
        _dir = new TempDir("pipeline-faults-");
        _pg = PrivatePostgres.Create(_dir.Combine("pg"));
        _clamd = new LoggingClamd(_dir.Combine("clamd"));
        await _clamd.StartAsync();
        _registry = await RestartableRegistry.StartAsync();
        await PushBaseImageAsync(_registry.HostPort);
        _vcsB = await PrivateGitServer.StartAsync(_dir.Combine("git"));
    }

    /// <summary>A test that failed half-way must not leave the next one a broken service.</summary>
    [TearDown]
    public async Task RepairServices()
    {
        (_registry.OnLine, _clamd.OnLine, _vcsB.OnLine) = (null, null, null);
        if (!_registry.Running) await _registry.RestartAsync();
        if (!_clamd.Running) await _clamd.StartAsync();
        if (!_vcsB.Running) await _vcsB.RestartAsync();
    }

    [OneTimeTearDown]
    public async Task StopPrivateServices()
    {
        _vcsB?.Dispose();
        _registry?.Dispose();
        _clamd?.Dispose();
        _pg?.Dispose();
        _dir?.Dispose();
        if (_harness is not null) await _harness.DisposeAsync();
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Registry_killed_in_the_middle_of_the_push_leaves_the_delivery_pending_and_the_other_node_accepts_it_once()
    {
        var f = await NewScenarioAsync();
        var repository = $"/v2/{f.S.RegistryRepository}/";
        var pending = await PendingAfterAsync(f, "stage:push:before", arm: kill => _registry.OnLine = line =>
        {
            if (line.Contains(repository, StringComparison.Ordinal)) kill(_registry.KillNow);
        });

        Assert.That(pending.ReasonCode, Does.StartWith("REG-NET-"), pending.Reason);
        await AssertPendingAtAsync(f, pending, "push");
        await _registry.RestartAsync();
        await f.RetryOnAsync("b", pending.Id);
        await f.AssertExactlyOnceAsync();
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Clamd_killed_in_the_middle_of_the_scan_leaves_the_delivery_pending_and_the_other_node_accepts_it_once()
    {
        var f = await NewScenarioAsync();
        // Files go to clamd as fetch writes them (ScanAhead): armed before fetch, killed after the first verdict.
        var pending = await PendingAfterAsync(f, "stage:fetch:before", arm: kill => _clamd.OnLine = line =>
        {
            // One file scanned, the big file still to come or on its way.
            if (line.EndsWith(": OK", StringComparison.Ordinal)) kill(_clamd.KillNow);
        });

        Assert.That(pending.ReasonCode, Does.StartWith("CHK-AV-"), pending.Reason);
        await AssertPendingAtAsync(f, pending, "scan");
        await f.AssertNothingPublishedAsync();
        await _clamd.StartAsync();
        await f.RetryOnAsync("b", pending.Id);
        await f.AssertExactlyOnceAsync();
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task VCS_B_killed_in_the_middle_of_the_publish_leaves_the_delivery_pending_and_the_other_node_accepts_it_once()
    {
        var f = await NewScenarioAsync();
        var pending = await PendingAfterAsync(f, "stage:publish:before", arm: kill => _vcsB.OnLine = line =>
        {
            // The ref advertisement is served; the pack is not sent yet.
            if (line.Contains("/info/refs?service=git-receive-pack", StringComparison.Ordinal)) kill(_vcsB.KillNow);
        });

        Assert.That(pending.ReasonCode, Is.EqualTo("PUBLISH-PUSH"), pending.Reason);
        await AssertPendingAtAsync(f, pending, "publish");
        await f.AssertNothingPublishedAsync();
        await _vcsB.RestartAsync();
        await f.RetryOnAsync("b", pending.Id);
        await f.AssertExactlyOnceAsync();
    }

    private async Task<FaultScenario> NewScenarioAsync(string? schedule = null)
    {
        var s = _harness.NewScenario();
        s.WriteDefinition();
        if (schedule is not null)
        {
            var def = Path.Combine(s.Root, "pipelines", s.Name + ".yaml");
            File.WriteAllText(def, File.ReadAllText(def).Replace("supplier: Test Supplier GmbH", $"supplier: Test Supplier GmbH\nschedule: \"{schedule}\"", StringComparison.Ordinal));
        }

        s.WriteGoodDelivery();
        // Big enough that scanning, packing and uploading it take a while: a service killed when
        // its log shows the stage's first request is killed in the middle of that stage.
        s.Supplier.Write("bin/data.bin", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4 << 20)));
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.0");

        var database = s.Name.Replace('-', '_');
        await _pg.CreateDatabaseAsync(database);
        var internalBare = _vcsB.InitBare(Path.Combine("internal", "e2e", s.Name + ".git"));
        var config = Path.Combine(s.Root, "engine-private.yaml");
        File.WriteAllText(config, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "{_pg.ConnectionString(database)}"
            clamd:
              endpoints: [{_clamd.Endpoint}]
              parallelism: 2
              configFile: {_clamd.ConfigFile}
            registry:
              url: http://{_registry.HostPort}
            internalGit:
              url: {_vcsB.Url}/internal
              credentialsFile: git.cred

            """);
        return new FaultScenario(s with { ConfigPath = config, InternalBare = internalBare }, database, _pg.ConnectionString(database), _registry.HostPort, internalBare);
    }

    /// <summary>
    /// Node a runs until <paramref name="pauseAt"/>; there <paramref name="arm"/> sets up the kill of
    /// a service (on a line of that service's log), and node a goes on. It must end with its
    /// delivery pending (exit code 3), never rejected. Returns the pending delivery.
    /// </summary>
    private static async Task<DeliveryRow> PendingAfterAsync(FaultScenario f, string pauseAt, Action<Action<Action>> arm)
    {
        var killed = 0;
        using var a = f.Run("a", pauseAt);
        await f.WaitPausedAsync("a", a);
        arm(kill =>
        {
            if (Interlocked.Exchange(ref killed, 1) == 0) kill();
        });
        f.Release("a");
        var rc = await a.WaitAsync(TimeSpan.FromMinutes(2));
        Assert.That(killed, Is.EqualTo(1), "the service was killed while the stage talked to it:\n" + a.Log);
        Assert.That(rc, Is.EqualTo(3), "pending is exit code 3, never a rejection:\n" + a.Log);
        Assert.That(a.Log, Does.Contain("PENDING"));
        var row = (await f.Ledger().FindDeliveriesAsync(f.S.Name, f.Tag, default)).Single();
        Assert.That((row.Status, row.Attempt), Is.EqualTo((DeliveryStatus.Pending, 1)), $"{row.ReasonCode} {row.Reason}");
        return row;
    }

    private static async Task AssertPendingAtAsync(FaultScenario f, DeliveryRow pending, string stage)
    {
        var last = (await f.Ledger().ReadAsync(pending.Id, default))[^1].Record;
        Assert.That((last.Stage, last.Verdict, last.ReasonCode), Is.EqualTo((stage, Verdict.Failed, pending.ReasonCode)));
        Assert.That(last.Evidence["failureKind"], Is.EqualTo("infrastructure"));
        Assert.That(Directory.Exists(Path.Combine(f.Nodes.WorkDir("a"), "quarantine")), Is.False, "an outage quarantines nothing");
    }

    /// <summary>The harness's base image, rebuilt (deterministically: the same digest) and pushed to the private registry.</summary>
    private async Task PushBaseImageAsync(string registry)
    {
        var store = new BlobStore(_harness.Dir.Combine("base-blobs"));
        var image = await ScratchBaseBuilder.BuildAsync(_harness.Dir.Combine("rootfs"), store, new ImageSettings { Created = DateTimeOffset.UnixEpoch }, DateTimeOffset.UnixEpoch);
        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + registry)));
        var pushed = await client.PushImageAsync("pipeline-tests/base", "e2e", image, store);
        Assert.That(_harness.BaseImage, Does.EndWith("@" + pushed.ManifestDigest), "the rebuilt base is the allowed one");
    }
}
