using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The ledger append inside the caller's transaction (real PostgreSQL, signing store): rolled back
/// with the caller's failed row change it leaves no entry and no log leaf (the next append reuses
/// the sequence number and log index, no gap); committed, it is one verified chain with the others.
/// </summary>
[Category("Integration")]
public class LedgerInTransactionTests
{
    private static StageRecord Rec(Guid id, string stage) =>
        new(id, "p", stage, Verdict.Passed, null, null, null, null, new Dictionary<string, string> { ["detail"] = stage });

    [Test]
    public async Task An_append_rolls_back_with_the_callers_failed_change_and_commits_with_it()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, "tx.example/ledger", null));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
        await store.AppendAsync(Rec(id, "fetch"), default);

        // The caller's own change fails after the append: both are gone.
        await using (var conn = await ds.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            var entry = await store.AppendInTransactionAsync(conn, tx, Rec(id, "withdrawal"), null, default);
            Assert.That((entry.Sequence, entry.LogIndex), Is.EqualTo((2L, (long?)1)));
            await using var bad = new NpgsqlCommand("update deliveries set status = 'no-such-status' where id = $1", conn, tx);
            bad.Parameters.AddWithValue(id);
            await Assert.ThrowsAsync<PostgresException>(() => bad.ExecuteNonQueryAsync(), "the caller's row change violates a constraint");
            await tx.RollbackAsync();
        }

        Assert.That((await store.ReadAsync(id, default)).Select(e => e.Record.Stage), Is.EqualTo(new[] { "fetch" }), "no entry survived the rollback");
        Assert.That(await store.Log.GetLeafAsync(1, default), Is.Null, "no log leaf survived the rollback");

        // Committed together: the entry and the caller's change are both there.
        await using (var conn = await ds.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            var entry = await store.AppendInTransactionAsync(conn, tx, Rec(id, "withdrawal"), null, default);
            Assert.That((entry.Sequence, entry.LogIndex), Is.EqualTo((2L, (long?)1)), "the rolled-back sequence and index are reused: no gap");
            await using var ok = new NpgsqlCommand("update deliveries set reason = 'withdrawn' where id = $1", conn, tx);
            ok.Parameters.AddWithValue(id);
            await ok.ExecuteNonQueryAsync();
            await tx.CommitAsync();
        }

        await store.AppendAsync(Rec(id, "after"), default);
        Assert.That((await store.ReadAsync(id, default)).Select(e => (e.Record.Stage, e.LogIndex)),
            Is.EqualTo(new[] { ("fetch", (long?)0), ("withdrawal", (long?)1), ("after", (long?)2) }));
        Assert.That((await store.GetDeliveryAsync(id, default))!.Reason, Is.EqualTo("withdrawn"));
        Assert.That(await store.VerifyChainAsync(default), Is.Null);
        await store.CheckpointAsync(default);
        var verification = await new AuditService(store, new KeyRing([key.Public]), "tx.example/ledger").VerifyLogAsync(null, default);
        Assert.That(verification.Problems, Is.Empty);
    }
}
