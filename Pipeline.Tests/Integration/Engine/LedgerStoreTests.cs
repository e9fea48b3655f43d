using Npgsql;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

[Category("Integration")]
public class LedgerStoreTests
{
    private static StageRecord Rec(Guid id, string stage, Verdict v = Verdict.Passed) =>
        new(id, "p", stage, v, v == Verdict.Failed ? "X-1" : null, v == Verdict.Failed ? "because" : null, "sha256:a", "sha256:b",
            new Dictionary<string, string> { ["signer"] = "Erika", ["files"] = "3" });

    [Test]
    public async Task Appended_entries_form_a_chain_that_survives_a_round_trip_through_postgres()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        var store = new LedgerStore(ds, TimeProvider.System);
        await store.MigrateAsync(default);
        await store.MigrateAsync(default); // idempotent

        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
        var e1 = await store.AppendAsync(Rec(id, "fetch"), default);
        var e2 = await store.AppendAsync(Rec(id, "verify", Verdict.Failed), default);
        await store.FinishDeliveryAsync(id, DeliveryStatus.Rejected, "X-1", "because", null, default);

        Assert.That((e1.Sequence, e2.Sequence, e2.PreviousHash), Is.EqualTo((1L, 2L, e1.EntryHash)));
        var read = await store.ReadAsync(id, default);
        Assert.That(read.Select(e => e.EntryHash), Is.EqualTo(new[] { e1.EntryHash, e2.EntryHash }));
        Assert.That(read[1].Record.Evidence["signer"], Is.EqualTo("Erika"));
        Assert.That(await store.VerifyChainAsync(default), Is.Null);
        var d = (await store.FindDeliveriesAsync("p", "v1.0.0", default)).Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, "X-1")));
    }

    [Test]
    public async Task A_row_changed_or_deleted_behind_the_engines_back_is_detected()
    {
        // Triggers refuse UPDATE/DELETE; a superuser disables them (session_replication_role) to tamper.
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        var store = new LedgerStore(ds, TimeProvider.System);
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1", "abc", default);
        for (var i = 0; i < 4; i++) await store.AppendAsync(Rec(id, "s" + i), default);

        await using (var cmd = ds.CreateCommand("set session_replication_role = replica; update ledger_entries set verdict = 'failed' where seq = 2"))
            await cmd.ExecuteNonQueryAsync();
        Assert.That(await store.VerifyChainAsync(default), Is.EqualTo("entry 2 was changed after it was recorded"));

        await using (var cmd = ds.CreateCommand("set session_replication_role = replica; update ledger_entries set verdict = 'passed' where seq = 2; delete from ledger_entries where seq = 3"))
            await cmd.ExecuteNonQueryAsync();
        Assert.That(await store.VerifyChainAsync(default), Is.EqualTo("entry 3 is missing (found 4 next)"));
    }

    [Test]
    public async Task Concurrent_appends_keep_one_gap_free_order()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        var store = new LedgerStore(ds, TimeProvider.System);
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1", "abc", default);

        // Two independent data sources stand for two engine processes.
        await using var ds2 = db.DataSource();
        var other = new LedgerStore(ds2, TimeProvider.System);
        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => (i % 2 == 0 ? store : other).AppendAsync(Rec(id, "s" + i), default)));
        var all = await store.ReadAsync(null, default);
        Assert.That(all.Select(e => e.Sequence), Is.EqualTo(Enumerable.Range(1, 40).Select(i => (long)i)));
        Assert.That(LedgerStore.VerifyChain(all), Is.Null);
    }

    [Test]
    public async Task A_pipeline_lock_is_exclusive_across_connections_and_released_on_dispose()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        var store = new LedgerStore(ds, TimeProvider.System);
        await using (var first = await store.TryLockPipelineAsync("p", default))
        {
            Assert.That(first, Is.Not.Null);
            await using var ds2 = db.DataSource();
            Assert.That(await new LedgerStore(ds2, TimeProvider.System).TryLockPipelineAsync("p", default), Is.Null, "a second engine must not run the same pipeline");
            await using var otherPipeline = await store.TryLockPipelineAsync("q", default);
            Assert.That(otherPipeline, Is.Not.Null, "other pipelines are not blocked");
        }

        await using var again = await store.TryLockPipelineAsync("p", default);
        Assert.That(again, Is.Not.Null);
    }

    [Test]
    public async Task A_database_newer_than_the_engine_is_refused()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        var store = new LedgerStore(ds, TimeProvider.System);
        await store.MigrateAsync(default);
        await using (var cmd = ds.CreateCommand("insert into schema_migrations(version) values (999)"))
            await cmd.ExecuteNonQueryAsync();
        var e = (await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => store.MigrateAsync(default)))!;
        Assert.That(e.Code, Is.EqualTo("DB-SCHEMA-NEWER"));
    }
}
