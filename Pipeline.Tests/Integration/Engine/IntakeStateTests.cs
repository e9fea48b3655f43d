using System.Collections.Concurrent;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Tests.Support;
using Serilog.Core;
using Serilog.Events;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The intake state machine in PostgreSQL (deliveries.intake_state): it follows every recorded step
/// in the same transaction as the step's ledger entry, refuses stale and illegal moves with their
/// codes, and is what a restarted engine reads to resume (pushed) or retry (anything before).
/// </summary>
public class IntakeStateTests : DeliveryFixture
{
    /// <summary>At each "Stage X passed" (logged before X's entry is written) reads the delivery's intake state from the database.</summary>
    private sealed class StateProbe(LedgerStore ledger) : ILogEventSink
    {
        public ConcurrentQueue<(string Stage, IntakeState? State, int Entries)> Seen { get; } = new();

        public void Emit(LogEvent e)
        {
            if (!e.MessageTemplate.Text.StartsWith("Stage {Stage} passed", StringComparison.Ordinal)) return;
            var stage = (string)((ScalarValue)e.Properties["Stage"]).Value!;
            var id = (Guid)((ScalarValue)e.Properties["DeliveryId"]).Value!;
            var state = ledger.GetIntakeStateAsync(id, default).GetAwaiter().GetResult();
            Seen.Enqueue((stage, state, ledger.ReadAsync(id, default).GetAwaiter().GetResult().Count));
        }
    }

    private LedgerStore Ledger() => new(Harness.Database.DataSource(), TimeProvider.System);

    private Scenario Published()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        return s;
    }

    [Test]
    public async Task The_intake_state_follows_every_recorded_step_and_ends_accepted()
    {
        var s = Published();
        var probe = new StateProbe(Ledger());
        var report = await s.RunAsync(new Serilog.LoggerConfiguration().WriteTo.Sink(probe).CreateLogger());
        var d = report.Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), $"{d.ReasonCode} {d.Reason}");

        // When step N has passed but is not yet recorded, the row still says what step N-1 recorded, with exactly N-1 entries.
        Assert.That(probe.Seen.ToArray(), Is.EqualTo(new (string, IntakeState?, int)[]
        {
            ("fetch", IntakeState.Started, 0), ("verify", IntakeState.Fetched, 1), ("scan", IntakeState.Verified, 2),
            ("publish", IntakeState.Scanned, 3), ("build", IntakeState.Published, 4), ("push", IntakeState.Built, 5),
        }));
        var row = (await Ledger().GetDeliveryAsync(d.DeliveryId, default))!;
        Assert.That((row.Status, row.IntakeState), Is.EqualTo((DeliveryStatus.Accepted, IntakeState.Accepted)));
    }

    [Test]
    public async Task A_rejected_delivery_ends_in_state_failed_at_the_step_that_failed()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("bin/app", "#!/bin/sh\necho tampered\n");
        s.Publish("v1.0.0");
        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, "CHK-SUM-025")));
        var row = (await Ledger().GetDeliveryAsync(d.DeliveryId, default))!;
        Assert.That(row.IntakeState, Is.EqualTo(IntakeState.Failed));
        Assert.That(d.Entries.Select(e => (e.Record.Stage, e.Record.Verdict)), Is.EqualTo(new[] { ("fetch", Verdict.Passed), ("verify", Verdict.Failed) }));
    }

    [Test]
    public async Task A_stale_or_illegal_move_is_refused_with_its_code_and_records_nothing()
    {
        var ledger = Ledger();
        var id = Guid.CreateVersion7();
        await ledger.StartDeliveryAsync(id, "intake-state", "v1.0.0", new string('a', 40), 1, null, default);
        StageRecord Record(string stage) => new(id, "intake-state", stage, Verdict.Passed, null, null, null, null, new Dictionary<string, string>());

        await ledger.AppendStepAsync(Record("fetch"), null, IntakeState.Started, IntakeState.Fetched, default);
        Assert.That((await ledger.GetDeliveryAsync(id, default))!.IntakeState, Is.EqualTo(IntakeState.Fetched));

        // A second engine that still believes the delivery is at 'started' cannot record fetch again.
        var stale = (await Assert.ThrowsAsync<IntakeTransitionException>(() => ledger.AppendStepAsync(Record("fetch"), null, IntakeState.Started, IntakeState.Fetched, default)))!;
        Assert.That(stale.Code, Is.EqualTo(IntakeStateMachine.ConflictCode));
        Assert.That(stale.Message, Does.Contain("is in intake state fetched, not started"));

        var illegal = (await Assert.ThrowsAsync<IntakeTransitionException>(() => ledger.AppendStepAsync(Record("push"), null, IntakeState.Fetched, IntakeState.Pushed, default)))!;
        Assert.That(illegal.Code, Is.EqualTo(IntakeStateMachine.IllegalCode));

        var early = (await Assert.ThrowsAsync<IntakeTransitionException>(() => ledger.AcceptDeliveryAsync(id, "r/a@sha256:" + new string('1', 64), default)))!;
        Assert.That(early.Code, Is.EqualTo(IntakeStateMachine.ConflictCode), "only a pushed delivery can be accepted");

        var row = (await ledger.GetDeliveryAsync(id, default))!;
        Assert.That((row.Status, row.IntakeState, row.Image), Is.EqualTo((DeliveryStatus.Running, IntakeState.Fetched, (string?)null)));
        Assert.That((await ledger.ReadAsync(id, default)).Select(e => e.Record.Stage), Is.EqualTo(new[] { "fetch" }), "refused moves left no ledger entry");
        Assert.That(await ledger.VerifyChainAsync(default), Is.Null);
    }

    [TestCase("stage:scan:recorded", IntakeState.Scanned)]
    [TestCase("stage:push:recorded", IntakeState.Pushed)]
    [CancelAfter(120_000)]
    public async Task After_a_kill_the_restarted_engine_reads_the_recorded_state_to_resume_or_retry(string point, IntakeState recorded)
    {
        var s = Published();
        using (var killed = EngineProcess.Start(["run", s.Name, "--config", s.ConfigPath], _ => false, _ => { },
                   new Dictionary<string, string> { [UnsafeTestFault.Variable] = point }))
            Assert.That(await killed.WaitAsync(TimeSpan.FromSeconds(60)), Is.EqualTo(137), killed.Log);

        var ledger = Ledger();
        var cut = (await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        Assert.That((cut.Status, cut.IntakeState), Is.EqualTo((DeliveryStatus.Running, recorded)), "the row says which step was recorded last");

        await using (var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Logger.None, default))
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                try
                {
                    var d = (await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries.Single();
                    Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), $"{d.ReasonCode} {d.Reason}");
                    break;
                }
                catch (Pipeline.Engine.PipelineException e) when (e.Code == "RUN-BUSY" && DateTime.UtcNow < deadline)
                {
                    // The killed process's session (and the pipeline's lock) ends when PostgreSQL notices the closed socket.
                    await Task.Delay(200);
                }
            }
        }

        var rows = await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default);
        if (recorded == IntakeState.Pushed)
            Assert.That(rows.Select(r => (r.Id, r.Status, r.IntakeState)), Is.EqualTo(new[] { (cut.Id, DeliveryStatus.Accepted, IntakeState.Accepted) }),
                "pushed: the same delivery is resumed to accepted");
        else
            Assert.That(rows.Select(r => (r.Status, r.IntakeState)), Is.EqualTo(new[]
                { (DeliveryStatus.Retried, IntakeState.Interrupted), (DeliveryStatus.Accepted, IntakeState.Accepted) }), "before push: interrupted, and a new attempt");
        Assert.That(await ledger.VerifyChainAsync(default), Is.Null);
    }
}
