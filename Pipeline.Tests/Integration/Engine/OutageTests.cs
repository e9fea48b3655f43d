using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// An outage of our own infrastructure (clamd, the registry, VCS B, the disk) is never the
/// supplier's rejection: the delivery stays pending with its cause, a pass before the backoff
/// leaves it alone, and once retried it is accepted exactly once. Each test stops a throw-away
/// service of its own (never a shared one) at an exact stage boundary, taken from the engine's log.
/// </summary>
public class OutageTests : DeliveryFixture
{
    [Test]
    public async Task Clamd_killed_before_the_scan_leaves_the_delivery_pending_and_a_retry_accepts_it_once()
    {
        using var clamd = await ThrowAwayClamd.StartAsync();
        var s = NewPublishedScenario();
        Reconfigure(s, $"tcp://{TestServices.Require("PIPELINE_CLAMD_TCP")}", clamd.Endpoint);

        var first = await RunAsync(s, new LogTrigger("verify", clamd.Kill));

        var d = first.Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Pending, "CHK-AV-005")), d.Reason);
        Assert.That(d.Reason, Does.Contain(clamd.Endpoint).And.Contain("Nothing is accepted unscanned"));
        await AssertPendingThenAcceptedOnceAsync(s, first, clamd.RestartAsync);
    }

    [Test]
    public async Task Registry_stopped_during_the_push_leaves_the_delivery_pending_and_a_retry_accepts_it_once()
    {
        using var registry = await RestartableRegistry.StartAsync();
        await PushBaseImageAsync(registry.HostPort);
        var s = NewPublishedScenario();
        Reconfigure(s, $"url: http://{Harness.Registry}", $"url: http://{registry.HostPort}");

        var first = await RunAsync(s, new LogTrigger("build", registry.Kill));

        var d = first.Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Pending, "REG-NET-001")), d.Reason);
        Assert.That(d.Entries[^1].Record.Stage, Is.EqualTo("push"));
        await AssertPendingThenAcceptedOnceAsync(s, first, registry.RestartAsync);
    }

    [Test]
    public async Task A_500_from_VCS_B_is_pending_with_exit_code_3_and_an_explicit_retry_accepts_it_once()
    {
        using var failing = new FailingHttpServer();
        var s = NewPublishedScenario();
        var vcsB = $"url: {TestServices.Require("PIPELINE_GIT_HTTP")}/internal";
        Reconfigure(s, vcsB, $"url: http://127.0.0.1:{failing.Port}/internal");

        var (rc, stdout, stderr) = await CliAsync("run", s.Name, "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(PipelineCli.Failure), stdout + stderr);
        Assert.That(stdout, Does.Contain("PENDING (PUBLISH-PUSH)").And.Contain("pipeline retry"));
        Assert.That(failing.Requests, Is.GreaterThan(0), "the engine did talk to the failing VCS B");
        var ledger = Ledger();
        var pending = (await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        Assert.That((pending.Status, pending.ReasonCode), Is.EqualTo((DeliveryStatus.Pending, "PUBLISH-PUSH")));
        Assert.That(Directory.Exists(Path.Combine(s.Root, "work", "quarantine")), Is.False, "an outage quarantines nothing");

        // Before the backoff is over a pass leaves it alone (and still says it is not done).
        (rc, stdout, _) = await CliAsync("run", s.Name, "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(PipelineCli.Failure));
        Assert.That(stdout, Does.Contain("1 waiting for a retry (v1.0.0)"));

        Reconfigure(s, $"url: http://127.0.0.1:{failing.Port}/internal", vcsB);
        (rc, stdout, stderr) = await CliAsync("retry", pending.Id.ToString(), "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), stderr);
        (rc, stdout, stderr) = await CliAsync("run", s.Name, "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), stdout + stderr);
        Assert.That(stdout, Does.Contain("ACCEPTED attempt 2"));
        await AssertAcceptedOnceAsync(s, pending.Id);

        (rc, _, stderr) = await CliAsync("retry", pending.Id.ToString(), "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(PipelineCli.Rejected));
        Assert.That(stderr, Does.StartWith("RETRY-NOT-PENDING").And.Contain("is retried, not pending"));
    }

    [Test]
    public async Task A_full_disk_during_the_build_leaves_the_delivery_pending_and_a_retry_accepts_it_once()
    {
        var s = NewPublishedScenario(bigFile: true);
        // The blob store, where the build writes its layers, on a tmpfs far too small for them.
        using var disk = new SmallTmpfs(Path.Combine(s.Root, "work", "blobs"), "64k");

        var first = await RunAsync(s, null);

        var d = first.Deliveries.Single();
        Assert.That((d.Status, d.Entries[^1].Record.Stage), Is.EqualTo((DeliveryStatus.Pending, "build")), $"{d.ReasonCode} {d.Reason}");
        Assert.That(d.Reason, Does.Contain("No space left on device"));
        await AssertPendingThenAcceptedOnceAsync(s, first, () =>
        {
            disk.Resize("512m");
            return Task.CompletedTask;
        });
    }

    private async Task AssertPendingThenAcceptedOnceAsync(Scenario s, RunReport first, Func<Task> repair)
    {
        var d = first.Deliveries.Single();
        Assert.That(PipelineCli.ExitCodeOf(first), Is.EqualTo(PipelineCli.Failure), "pending is exit code 3, not a rejection");
        Assert.That(d.NextAttemptAt, Is.GreaterThan(DateTimeOffset.UtcNow), "retried after a backoff");
        Assert.That(d.QuarantineDir, Is.Null);
        Assert.That(d.Entries[^1].Record.Evidence["failureKind"], Is.EqualTo("infrastructure"));
        var ledger = Ledger();
        var row = (await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        Assert.That((row.Status, row.ReasonCode, row.Attempt), Is.EqualTo((DeliveryStatus.Pending, d.ReasonCode, 1)));
        Assert.That(Directory.Exists(Path.Combine(s.Root, "work", "runs", d.DeliveryId.ToString("N"))), Is.False, "its work folder is removed");

        await repair();
        var early = await RunAsync(s, null);
        Assert.That((early.Deliveries.Count, early.Waiting), Is.EqualTo((0, (IReadOnlyList<string>)["v1.0.0"])), "not retried before its time");
        Assert.That(PipelineCli.ExitCodeOf(early), Is.EqualTo(PipelineCli.Failure));

        await ledger.RetryNowAsync(d.DeliveryId, default);
        var second = await RunAsync(s, null);
        var accepted = second.Deliveries.Single();
        Assert.That((accepted.Status, accepted.Attempt), Is.EqualTo((DeliveryStatus.Accepted, 2)), $"{accepted.ReasonCode} {accepted.Reason}");
        Assert.That(PipelineCli.ExitCodeOf(second), Is.EqualTo(PipelineCli.Ok));
        await AssertAcceptedOnceAsync(s, d.DeliveryId);
        Assert.That((await RunAsync(s, null)).Deliveries, Is.Empty, "nothing more to do");
    }

    private async Task AssertAcceptedOnceAsync(Scenario s, Guid pendingId)
    {
        var rows = await Ledger().FindDeliveriesAsync(s.Name, "v1.0.0", default);
        Assert.That(rows.Select(r => r.Status), Is.EqualTo(new[] { DeliveryStatus.Retried, DeliveryStatus.Accepted }));
        Assert.That((rows[0].Id, rows[1].RetryOf), Is.EqualTo((pendingId, (Guid?)pendingId)));
    }

    private Scenario NewPublishedScenario(bool bigFile = false)
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        if (bigFile)
        {
            s.Supplier.Write("bin/data.bin", Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(1 << 20)));
            s.Supplier.WriteChecksums();
        }

        s.Publish("v1.0.0");
        return s;
    }

    private static void Reconfigure(Scenario s, string from, string to)
    {
        var text = File.ReadAllText(s.ConfigPath);
        Assert.That(text, Does.Contain(from));
        File.WriteAllText(s.ConfigPath, text.Replace(from, to, StringComparison.Ordinal));
    }

    private LedgerStore Ledger() => new(Harness.Database.DataSource(), TimeProvider.System);

    private static async Task<RunReport> RunAsync(Scenario s, LogTrigger? trigger)
    {
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, trigger?.Logger() ?? Serilog.Core.Logger.None, default);
        var report = await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
        if (trigger is not null) Assert.That(trigger.Fired, Is.True, "the outage happened at the intended stage");
        return report;
    }

    private static async Task<(int Rc, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var rc = await PipelineCli.RunAsync(args, stdout, stderr);
        return (rc, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The harness's base image, rebuilt (deterministically: the same digest) and pushed to another registry.</summary>
    private async Task PushBaseImageAsync(string registry)
    {
        var store = new BlobStore(Harness.Dir.Combine("base-blobs"));
        var image = await ScratchBaseBuilder.BuildAsync(Harness.Dir.Combine("rootfs"), store, new ImageSettings { Created = DateTimeOffset.UnixEpoch }, DateTimeOffset.UnixEpoch);
        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + registry)));
        var pushed = await client.PushImageAsync("pipeline-tests/base", "e2e", image, store);
        Assert.That(Harness.BaseImage, Does.EndWith("@" + pushed.ManifestDigest), "the rebuilt base is the allowed one");
    }
}
