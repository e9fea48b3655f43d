using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>Schema step 9 gives deliveries recorded before it the intake state their status and ledger entries imply.</summary>
[Category("Integration")]
public class IntakeStateMigrationTests
{
    [Test]
    public async Task Existing_deliveries_get_the_state_their_status_and_entries_imply()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        await LedgerSchema.MigrateAsync(ds, default);
        var ledger = new LedgerStore(ds, TimeProvider.System);
        string[] six = ["fetch", "verify", "scan", "publish", "build", "push"];

        async Task<Guid> Delivery(IEnumerable<string> passed, string? failed = null)
        {
            var id = Guid.CreateVersion7();
            await ledger.StartDeliveryAsync(id, "p", "v" + id.ToString("N")[..8], new string('a', 40), 1, null, default);
            foreach (var stage in passed)
                await ledger.AppendAsync(new StageRecord(id, "p", stage, Verdict.Passed, null, null, null, null, new Dictionary<string, string>()), default);
            if (failed is not null)
                await ledger.AppendAsync(new StageRecord(id, "p", failed, Verdict.Failed, "X-1", "x", null, null, new Dictionary<string, string>()), default);
            return id;
        }

        var accepted = await Delivery(six);
        await ledger.FinishDeliveryAsync(accepted, DeliveryStatus.Accepted, null, null, "r/a@sha256:" + new string('1', 64), default);
        var rejected = await Delivery(["fetch"], "verify");
        await ledger.FinishDeliveryAsync(rejected, DeliveryStatus.Rejected, "X-1", "x", null, default);
        var interrupted = await Delivery(["fetch"], "interrupted");
        await ledger.MarkPendingAsync(interrupted, "ENG-INTERRUPTED", "x", DateTimeOffset.UtcNow, default);
        var outage = await Delivery(["fetch", "verify"], "scan");
        await ledger.MarkPendingAsync(outage, "SCAN-CLAMD-DOWN", "x", DateTimeOffset.UtcNow, default);
        var scanned = await Delivery(["fetch", "verify", "scan"]);
        var pushed = await Delivery(six);
        var failedRunning = await Delivery(["fetch"], "verify");
        var started = await Delivery([]);

        // Back to the schema before step 9, with those rows in it; then the step runs.
        await using (var down = ds.CreateCommand("alter table deliveries drop column intake_state, drop column intake_updated_at; delete from schema_migrations where version = 9"))
            await down.ExecuteNonQueryAsync();
        await LedgerSchema.MigrateAsync(ds, default);

        var states = new Dictionary<Guid, IntakeState>();
        foreach (var id in new[] { accepted, rejected, interrupted, outage, scanned, pushed, failedRunning, started })
            states[id] = (await ledger.GetDeliveryAsync(id, default))!.IntakeState;
        Assert.That(new[] { accepted, rejected, interrupted, outage, scanned, pushed, failedRunning, started }.Select(i => states[i]), Is.EqualTo(new[]
        {
            IntakeState.Accepted, IntakeState.Failed, IntakeState.Interrupted, IntakeState.Failed,
            IntakeState.Scanned, IntakeState.Pushed, IntakeState.Failed, IntakeState.Started,
        }));
    }
}
