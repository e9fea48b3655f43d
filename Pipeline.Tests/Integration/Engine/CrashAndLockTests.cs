using Npgsql;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// A run killed at any stage, a pipeline lock lost to a terminated database session, and the
/// daemon stopped by a signal: the next pass finishes the delivery exactly once, never rejects it,
/// and leaves no delivery running and no work folder behind.
/// </summary>
public class CrashAndLockTests : DeliveryFixture
{
    [TestCase("fetch")]
    [TestCase("scan")]
    [TestCase("build")]
    [TestCase("push")]
    public async Task Kill_9_of_pipeline_run_at_a_stage_boundary_then_a_second_run_completes_exactly_once(string stage)
    {
        var s = NewPublishedScenario();
        using (var child = EngineProcess.Start(["run", s.Name, "--config", s.ConfigPath], line => line.Contains($" Stage {stage} passed"), p => p.KillHard()))
            Assert.That(await child.WaitAsync(TimeSpan.FromMinutes(3)), Is.EqualTo(137), child.Log);

        var ledger = Ledger();
        var killed = (await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        var leftovers = Path.Combine(s.Root, "work", "runs", killed.Id.ToString("N"));
        if (killed.Status == DeliveryStatus.Accepted)
            Assert.Inconclusive("the killed run finished before the kill landed");
        Assert.That(killed.Status, Is.EqualTo(DeliveryStatus.Running), "a killed run leaves its delivery running");

        await WaitUntilNoSessionHoldsTheLockAsync(s.Name);
        var sink = new CapturingSink();
        await using (var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default))
        {
            var report = await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
            var d = report.Deliveries.Single();
            Assert.That((d.Status, d.Attempt), Is.EqualTo((DeliveryStatus.Accepted, 2)), $"{d.ReasonCode} {d.Reason}");
        }

        var rows = await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default);
        Assert.That(rows.Select(r => (r.Id, r.Status)), Is.EqualTo(new[] { (killed.Id, DeliveryStatus.Retried), (rows[1].Id, DeliveryStatus.Accepted) }));
        var interrupted = (await ledger.ReadAsync(killed.Id, default))[^1].Record;
        Assert.That((interrupted.Stage, interrupted.Verdict, interrupted.ReasonCode), Is.EqualTo((StaleDeliveries.InterruptedStage, Verdict.Failed, StaleDeliveries.Code)));
        Assert.That(interrupted.Evidence["lastRecordedStage"], Is.Not.Null);
        Assert.That(Directory.Exists(leftovers), Is.False, "the killed run's work folder is cleaned");
        Assert.That(await ledger.VerifyChainAsync(default), Is.Null);
        Assert.That(sink.Lines, Has.Some.Contains("was left running by a stopped engine"));
    }

    [Test]
    public async Task A_node_whose_lock_session_is_terminated_stops_before_writing_and_the_other_node_accepts_once()
    {
        var s = NewPublishedScenario();
        var ledger = Ledger();
        var terminated = 0;
        var trigger = new LogTrigger("verify", () => terminated = TerminateLockHolder(s.Name));

        await using (var node1 = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, trigger.Logger(), default))
        {
            var e = (await Assert.ThrowsAsync<PipelineLockLostException>(() => node1.Runner.RunOnceAsync(node1.Pipeline(s.Name), default)))!;
            Assert.That(e.Code, Is.EqualTo("RUN-LOCK-LOST"));
            Assert.That(e.Message, Does.Contain($"lock of pipeline '{s.Name}'"));
        }

        Assert.That(terminated, Is.EqualTo(1), "exactly one session held the pipeline's lock");
        var lost = (await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        Assert.That(lost.Status, Is.EqualTo(DeliveryStatus.Running));
        Assert.That((await ledger.ReadAsync(lost.Id, default)).Select(x => x.Record.Stage), Is.EqualTo(new[] { "fetch" }),
            "nothing after the lock was lost: not even the verify stage that had passed");
        Assert.That(Shell.Run("git", ["--git-dir", s.InternalBare, "tag", "--list"]).Stdout.Trim(), Is.Empty, "nothing published to VCS B");

        await using (var node2 = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default))
        {
            var report = await node2.Runner.RunOnceAsync(node2.Pipeline(s.Name), default);
            Assert.That(report.Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));
        }

        var rows = await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default);
        Assert.That(rows.Select(r => r.Status), Is.EqualTo(new[] { DeliveryStatus.Retried, DeliveryStatus.Accepted }), "a duplicate is never a rejection");
    }

    [Test]
    public async Task SIGTERM_cancels_a_running_delivery_promptly_records_it_pending_and_the_daemon_exits_0()
    {
        var s = NewPublishedScenario();
        var def = Path.Combine(s.Root, "pipelines", s.Name + ".yaml");
        File.WriteAllText(def, File.ReadAllText(def).Replace("supplier: Test Supplier GmbH", "supplier: Test Supplier GmbH\nschedule: \"* * * * * ?\""));
        var signalled = DateTime.MinValue;
        int rc;
        string log;
        using (var daemon = EngineProcess.Start(["daemon", "--config", s.ConfigPath], line => line.Contains(" Stage verify passed"), p =>
               {
                   signalled = DateTime.UtcNow;
                   p.Signal("TERM");
               }))
        {
            rc = await daemon.WaitAsync(TimeSpan.FromMinutes(3));
            log = daemon.Log;
        }

        Assert.That(rc, Is.EqualTo(0), log);
        Assert.That(DateTime.UtcNow - signalled, Is.LessThan(TimeSpan.FromSeconds(30)), "stopped promptly, not after a 2-minute timeout");
        Assert.That(log, Does.Contain("cancelled in").And.Contain("Daemon stopped"));
        var row = (await Ledger().FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        Assert.That((row.Status, row.ReasonCode), Is.EqualTo((DeliveryStatus.Pending, "ENG-CANCELLED")));

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var d = (await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries.Single();
        Assert.That((d.Status, d.Attempt), Is.EqualTo((DeliveryStatus.Accepted, 2)), "a cancelled delivery is retried by the next pass");
    }

    [Test]
    public async Task SIGHUP_is_logged_and_stops_the_daemon_cleanly()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        int rc;
        string log;
        using (var daemon = EngineProcess.Start(["daemon", "--config", s.ConfigPath], line => line.Contains("Daemon started"), p => p.Signal("HUP")))
        {
            rc = await daemon.WaitAsync(TimeSpan.FromMinutes(2));
            log = daemon.Log;
        }

        Assert.That(rc, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("SIGHUP received: stopping cleanly").And.Contain("Daemon stopped"));
    }

    /// <summary>The killed process's database session ends when PostgreSQL sees its socket close; a restarted engine may have to wait for that.</summary>
    private async Task WaitUntilNoSessionHoldsTheLockAsync(string pipeline)
    {
        for (var i = 0; i < 300 && CountLockHolders(pipeline, terminate: false) > 0; i++) await Task.Delay(100);
        Assert.That(CountLockHolders(pipeline, terminate: false), Is.Zero, "the killed engine's session still holds the lock after 30 s");
    }

    private int TerminateLockHolder(string pipeline) => CountLockHolders(pipeline, terminate: true);

    /// <summary>Terminates the database session holding the pipeline's advisory lock (as a failover would); returns how many were terminated.</summary>
    private int CountLockHolders(string pipeline, bool terminate)
    {
        var key = BitConverter.ToInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("pipeline:" + pipeline)), 0);
        using var ds = Harness.Database.DataSource();
        using var cmd = ds.CreateCommand(
            (terminate ? "select count(pg_terminate_backend(pid))" : "select count(*)") + " from pg_locks where locktype = 'advisory' and granted and objsubid = 1 " +
            "and classid::bigint = (($1 >> 32) & 4294967295) and objid::bigint = ($1 & 4294967295)");
        cmd.Parameters.AddWithValue(key);
        return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private Scenario NewPublishedScenario()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        return s;
    }

    private LedgerStore Ledger() => new(Harness.Database.DataSource(), TimeProvider.System);
}
