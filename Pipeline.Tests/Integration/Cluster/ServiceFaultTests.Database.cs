using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cluster;

/// <summary>The database restarted under a running node, a power loss (node and database at once) and a full work folder on one node.</summary>
public partial class ServiceFaultTests
{
    [Test]
    [CancelAfter(120_000)]
    public async Task PostgreSQL_restarted_after_the_publish_before_its_ledger_entry_stops_the_node_before_it_writes_and_the_other_node_accepts_once()
    {
        var f = await NewScenarioAsync();
        using (var a = f.Run("a", "stage:publish:after"))
        {
            await f.WaitPausedAsync("a", a);
            _pg.StopImmediately();
            _pg.Start();
            f.Release("a");
            var rc = await a.WaitAsync(TimeSpan.FromMinutes(2));
            Assert.That(rc, Is.Not.EqualTo(0), a.Log);
            Assert.That(a.Log, Does.Contain("RUN-LOCK-LOST"), "the node noticed it lost its database session and stopped");
        }

        var ledger = f.Ledger();
        var cut = (await ledger.FindDeliveriesAsync(f.S.Name, f.Tag, default)).Single();
        Assert.That(cut.Status, Is.EqualTo(DeliveryStatus.Running), "nothing was written after the session was lost, not even a status");
        Assert.That((await ledger.ReadAsync(cut.Id, default)).Select(e => e.Record.Stage), Is.EqualTo(new[] { "fetch", "verify", "scan" }),
            "the publish that ran is not recorded, and nothing after it ran");
        using (var registry = new Pipeline.Registry.Distribution.RegistryClient(new Pipeline.Registry.Distribution.RegistryEndpoint(new Uri("http://" + _registry.HostPort))))
            Assert.That(async () => await registry.GetManifestAsync(f.S.RegistryRepository, f.Tag), Throws.Exception, "nothing pushed to the registry");

        await NodeBAcceptsTheRetryAndNodeACleansUpAsync(f, cut.Id);
    }

    [Test]
    [CancelAfter(150_000)]
    public async Task PostgreSQL_restarted_under_two_daemons_the_node_that_lost_its_session_stops_the_delivery_both_daemons_go_on_and_it_is_accepted_once()
    {
        var f = await NewScenarioAsync(schedule: "0/2 * * * * ?");
        using var a = f.Nodes.Start("a", environment: new Dictionary<string, string>
        {
            [UnsafeTestFault.PauseVariable] = "stage:verify:recorded",
            [UnsafeTestFault.PauseFileVariable] = f.ReleaseFile("a"),
        });
        await f.WaitPausedAsync("a", a);
        using var b = f.Nodes.Start("b");
        await WaitUntilAsync(() => b.Log.Contains("Daemon started"), "daemon b started", a, b);

        _pg.StopImmediately();
        _pg.Start();
        f.Release("a");

        var ledger = f.Ledger();
        await WaitUntilAsync(() => ledger.FindDeliveriesAsync(f.S.Name, f.Tag, default).Result.Any(r => r.Status == DeliveryStatus.Accepted), "a daemon accepted the delivery", a, b);
        Assert.That(a.Log, Does.Contain("RUN-LOCK-LOST"), "node a stopped its delivery when its session was gone");
        var rows = await ledger.FindDeliveriesAsync(f.S.Name, f.Tag, default);
        Assert.That((await ledger.ReadAsync(rows[0].Id, default)).Select(e => e.Record.Stage), Is.EqualTo(new[] { "fetch", "verify", StaleDeliveries.InterruptedStage }),
            "node a wrote nothing after its session was lost");
        await AssertRetriedAfterInterruptionAsync(f, rows[0].Id);
        // Node a's next scheduled pass removes the work folder it left.
        var runs = Path.Combine(f.Nodes.WorkDir("a"), "runs");
        await WaitUntilAsync(() => !Directory.Exists(runs) || Directory.GetFileSystemEntries(runs).Length == 0, "node a removed its work folder", a, b);
        Assert.That((a.HasExited, b.HasExited), Is.EqualTo((false, false)), "both daemons went on after the database restart");
        a.Signal("TERM");
        b.Signal("TERM");
        Assert.That(await a.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0), a.Log);
        Assert.That(await b.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0), b.Log);
        await f.AssertExactlyOnceAsync();
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task Power_loss_after_the_push_before_its_ledger_entry_node_killed_and_PostgreSQL_stopped_at_once_the_other_node_accepts_once()
    {
        var f = await NewScenarioAsync();
        using (var a = f.Run("a", "stage:push:after"))
        {
            await f.WaitPausedAsync("a", a);
            // The node and the database lose power in the same moment.
            await Task.WhenAll(Task.Run(a.KillHard), Task.Run(_pg.StopImmediately));
            Assert.That(await a.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(137), a.Log);
        }

        _pg.Start();
        var ledger = f.Ledger();
        var cut = (await ledger.FindDeliveriesAsync(f.S.Name, f.Tag, default)).Single();
        Assert.That(cut.Status, Is.EqualTo(DeliveryStatus.Running));
        Assert.That((await ledger.ReadAsync(cut.Id, default)).Select(e => e.Record.Stage), Is.EqualTo(new[] { "fetch", "verify", "scan", "publish", "build" }));

        await NodeBAcceptsTheRetryAndNodeACleansUpAsync(f, cut.Id);
    }

    [Test]
    [CancelAfter(120_000)]
    public async Task A_full_work_folder_on_one_node_leaves_the_delivery_pending_with_ENG_DISK_FULL_and_the_other_node_accepts_it_once()
    {
        var f = await NewScenarioAsync();
        // Room for the supplier's mirror, not for the delivery's exported files (the big file is 5.6 MB).
        using var disk = new SmallTmpfs(f.Nodes.WorkDir("a"), "6m");

        var (code, log) = await f.PassAsync("a");
        Assert.That(code, Is.EqualTo(3), "pending, never rejected:\n" + log);
        var pending = (await f.Ledger().FindDeliveriesAsync(f.S.Name, f.Tag, default)).Single();
        Assert.That((pending.Status, pending.ReasonCode), Is.EqualTo((DeliveryStatus.Pending, "ENG-DISK-FULL")), pending.Reason);
        Assert.That(pending.Reason, Does.Contain("No space left on device"));
        var last = (await f.Ledger().ReadAsync(pending.Id, default))[^1].Record;
        Assert.That((last.Verdict, last.ReasonCode, last.Evidence["failureKind"]), Is.EqualTo((Verdict.Failed, "ENG-DISK-FULL", "infrastructure")));
        await f.AssertNothingPublishedAsync();

        await f.RetryOnAsync("b", pending.Id);
        await f.AssertExactlyOnceAsync();
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, params EngineProcess[] logs)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"not within 60 s: {what}\n" + string.Join("\n---\n", logs.Select(l => l.Log)));
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Node b retries the cut-off delivery and accepts attempt 2; node a, started again, removes the work folder
    /// it left (node b cannot reach its disk); then everything exists exactly once.
    /// </summary>
    private static async Task NodeBAcceptsTheRetryAndNodeACleansUpAsync(FaultScenario f, Guid cut)
    {
        var (code, log) = await f.PassAsync("b");
        Assert.That(code, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("ACCEPTED attempt 2"));
        await AssertRetriedAfterInterruptionAsync(f, cut);
        (code, log) = await f.PassAsync("a");
        Assert.That(code, Is.EqualTo(0), log);
        await f.AssertExactlyOnceAsync();
    }

    /// <summary>The cut-off attempt is recorded as interrupted and retried; the second attempt is accepted.</summary>
    private static async Task AssertRetriedAfterInterruptionAsync(FaultScenario f, Guid cut)
    {
        var ledger = f.Ledger();
        var rows = await ledger.FindDeliveriesAsync(f.S.Name, f.Tag, default);
        Assert.That(rows.Select(r => (r.Id, r.Status, r.Attempt)), Is.EqualTo(new[] { (cut, DeliveryStatus.Retried, 1), (rows[^1].Id, DeliveryStatus.Accepted, 2) }));
        var last = (await ledger.ReadAsync(cut, default))[^1].Record;
        Assert.That((last.Stage, last.ReasonCode), Is.EqualTo((StaleDeliveries.InterruptedStage, StaleDeliveries.Code)));
    }
}
