using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// Group commit of one-entry appends: appenders that arrive while the append lock is held are
/// written together in one transaction, in one gap-free order across engines, each entry still
/// individually signed and chained; a refused entry fails alone.
/// </summary>
[Category("Integration")]
public class LedgerGroupCommitTests
{
    private const string Origin = "group.example/ledger";

    private static StageRecord Rec(Guid id, string stage) =>
        new(id, "p", stage, Verdict.Passed, null, null, "sha256:" + new string('a', 64), "sha256:" + new string('b', 64), new Dictionary<string, string> { ["n"] = stage });

    [Test]
    public async Task Appends_that_wait_for_the_lock_are_committed_together_each_signed_and_chained()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, null));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1", "abc", default);

        List<Task<LedgerEntry>> appends;
        await using (var holder = await ds.OpenConnectionAsync())
        {
            await using (var take = new NpgsqlCommand($"select pg_advisory_lock({LedgerStore.AppendLockKey})", holder)) await take.ExecuteNonQueryAsync();
            appends = Enumerable.Range(0, 20).Select(i => store.AppendAsync(Rec(id, "s" + i), default)).ToList();
            await WaitForLockWaiterAsync(ds);
            Assert.That(appends.Any(a => a.IsCompleted), Is.False, "nothing is written while another engine holds the append lock");
            await using var release = new NpgsqlCommand($"select pg_advisory_unlock({LedgerStore.AppendLockKey})", holder);
            await release.ExecuteNonQueryAsync();
        }

        var entries = await Task.WhenAll(appends);
        Assert.That(entries.Select(e => e.Sequence).Order(), Is.EqualTo(Enumerable.Range(1, 20).Select(i => (long)i)));
        Assert.That(entries.Select(e => e.Record.Stage), Is.EqualTo(Enumerable.Range(0, 20).Select(i => "s" + i)), "each caller gets its own entry");
        Assert.That(entries.OrderBy(e => e.Sequence).Select(e => e.Record.Stage), Is.EqualTo(Enumerable.Range(0, 20).Select(i => "s" + i)), "written in arrival order");
        await using (var q = ds.CreateCommand("select count(distinct xmin::text) from ledger_entries"))
            Assert.That(await q.ExecuteScalarAsync(), Is.LessThanOrEqualTo(2L), "the queued appends were written in at most two transactions (the first leader's group and the rest)");
        var all = await store.ReadAsync(null, default);
        Assert.That(LedgerStore.VerifyChain(all), Is.Null);
        Assert.That(all.Select(e => e.LogIndex), Is.EqualTo(Enumerable.Range(0, 20).Select(i => (long?)i)), "one leaf per entry, in the same order");
        await store.CheckpointAsync(default);
        var verified = await new AuditService(store, new KeyRing([key.Public]), Origin).VerifyLogAsync(null, default);
        Assert.That(verified.Problems, Is.Empty);
        Assert.That((verified.LeavesChecked, verified.LedgerEntriesChecked), Is.EqualTo((20L, 20L)), "every entry's own envelope verifies");
    }

    [Test]
    public async Task A_refused_entry_fails_alone_and_the_rest_of_its_group_is_written()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, null));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1", "abc", default);

        List<Task<LedgerEntry>> appends;
        await using (var holder = await ds.OpenConnectionAsync())
        {
            await using (var take = new NpgsqlCommand($"select pg_advisory_lock({LedgerStore.AppendLockKey})", holder)) await take.ExecuteNonQueryAsync();
            // The fourth names a delivery that does not exist: the database refuses it (foreign key).
            appends = Enumerable.Range(0, 8).Select(i => store.AppendAsync(Rec(i == 3 ? Guid.CreateVersion7() : id, "s" + i), default)).ToList();
            await WaitForLockWaiterAsync(ds);
            await using var release = new NpgsqlCommand($"select pg_advisory_unlock({LedgerStore.AppendLockKey})", holder);
            await release.ExecuteNonQueryAsync();
        }

        var refused = await Assert.ThrowsAsync<PostgresException>(() => appends[3]);
        Assert.That(refused!.SqlState, Is.EqualTo(PostgresErrorCodes.ForeignKeyViolation));
        var written = await Task.WhenAll(appends.Where((_, i) => i != 3));
        Assert.That(written.Select(e => e.Record.Stage), Is.EqualTo(new[] { "s0", "s1", "s2", "s4", "s5", "s6", "s7" }));
        var all = await store.ReadAsync(null, default);
        Assert.That(all.Select(e => e.Sequence), Is.EqualTo(Enumerable.Range(1, 7).Select(i => (long)i)), "no gap where the refused entry would have been");
        Assert.That(LedgerStore.VerifyChain(all), Is.Null);
        await store.CheckpointAsync(default);
        Assert.That((await new AuditService(store, new KeyRing([key.Public]), Origin).VerifyLogAsync(null, default)).Problems, Is.Empty);
    }

    [Test]
    public async Task Two_engines_appending_at_once_keep_one_gap_free_signed_order()
    {
        await using var db = await TestDatabase.CreateAsync();
        using var key = EngineSigningKey.Generate();
        await using var ds1 = db.DataSource();
        await using var ds2 = db.DataSource();
        var one = new LedgerStore(ds1, TimeProvider.System, new LogSigning(key, Origin, null));
        var two = new LedgerStore(ds2, TimeProvider.System, new LogSigning(key, Origin, null));
        await one.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await one.StartDeliveryAsync(id, "p", "v1", "abc", default);

        // Eight appenders per engine, 15 entries each, one entry at a time.
        var work = new[] { one, two }.SelectMany((store, s) => Enumerable.Range(0, 8).Select(a => Task.Run(async () =>
        {
            var mine = new List<LedgerEntry>();
            for (var k = 0; k < 15; k++) mine.Add(await store.AppendAsync(Rec(id, $"e{s}-{a}-{k}"), default));
            return mine;
        })));
        var entries = (await Task.WhenAll(work)).SelectMany(x => x).ToList();

        Assert.That(entries.Select(e => e.Sequence).Order(), Is.EqualTo(Enumerable.Range(1, 240).Select(i => (long)i)));
        var all = await one.ReadAsync(null, default);
        Assert.That(LedgerStore.VerifyChain(all), Is.Null);
        Assert.That(all.Select(e => e.EntryHash), Is.EqualTo(entries.OrderBy(e => e.Sequence).Select(e => e.EntryHash)), "what each appender was told is what was stored");
        await one.CheckpointAsync(default);
        Assert.That((await new AuditService(one, new KeyRing([key.Public]), Origin).VerifyLogAsync(null, default)).Problems, Is.Empty);
    }

    /// <summary>Polls until a session waits for an advisory lock (the group's leader, blocked behind the test's holder).</summary>
    private static async Task WaitForLockWaiterAsync(NpgsqlDataSource ds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await using var q = ds.CreateCommand("select count(*) from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())");
            if ((long)(await q.ExecuteScalarAsync())! > 0) return;
            if (DateTime.UtcNow > deadline) Assert.Fail("no appender came to wait for the append lock within 30 s");
            await Task.Delay(20);
        }
    }
}
