using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The batched append path (imports, the ledger benchmark) mixed with single appends in real
/// PostgreSQL: one gap-free order, one hash chain, a tree that <c>audit verify</c> recomputes from
/// the leaves, and inclusion proofs that verify for every entry.
/// </summary>
[Category("Integration")]
public class LedgerBatchAppendTests
{
    private static StageRecord Rec(Guid id, int i) =>
        new(id, "p", "s" + i, i % 5 == 4 ? Verdict.Failed : Verdict.Passed, i % 5 == 4 ? "X-FAIL" : null, i % 5 == 4 ? "failed on purpose" : null,
            $"sha256:{i:x64}", $"sha256:{i + 1:x64}", new Dictionary<string, string> { ["n"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    [Test]
    public async Task Batches_and_single_appends_interleave_into_one_gap_free_verified_log()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, "batch.example/ledger", null));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);

        var n = 0;
        var indexes = new List<long?>();
        // Sizes chosen so batches start at odd sizes and cross several perfect-subtree boundaries.
        foreach (var (single, batch) in new[] { (3, 10), (0, 1), (2, 17), (1, 0), (0, 33) })
        {
            for (var i = 0; i < single; i++) indexes.Add((await store.AppendAsync(Rec(id, n++), default)).LogIndex);
            var items = Enumerable.Range(0, batch).Select(_ => (Rec(id, n++), (InTotoStatement?)null)).ToList();
            var appended = await store.AppendBatchAsync(items, default);
            Assert.That(appended.Select(e => e.Record.Stage), Is.EqualTo(items.Select(x => x.Item1.Stage)), "list order is log order");
            indexes.AddRange(appended.Select(e => e.LogIndex));
        }

        Assert.That(indexes, Is.EqualTo(Enumerable.Range(0, n).Select(i => (long?)i)), "gap-free, in order");
        Assert.That(await store.VerifyChainAsync(default), Is.Null, "one hash chain across single and batched appends");
        var cp = await store.CheckpointAsync(default);
        Assert.That(cp.TreeSize, Is.EqualTo(n));

        var audit = new AuditService(store, new KeyRing([key.Public]), "batch.example/ledger");
        var verification = await audit.VerifyLogAsync(null, default);
        Assert.That(verification.Problems, Is.Empty, "every stored node equals the one recomputed from the leaves");
        Assert.That(verification.NodesChecked, Is.EqualTo(2 * n - System.Numerics.BitOperations.PopCount((ulong)n)), "exactly the perfect subtrees are stored");

        for (long i = 0; i < n; i++)
        {
            var leaf = (await store.Log.GetLeafAsync(i, default))!;
            var proof = await store.Log.InclusionProofAsync(i, n, default);
            Assert.That(MerkleProofs.VerifyInclusion(i, n, Merkle.LeafHash(leaf.Envelope), proof, cp.RootHash), Is.True, $"entry {i}");
        }

        var failed = await audit.QueryAsync(new LeafQuery(Verdict: "failed"), default);
        Assert.That(failed.Select(r => r.ReasonCode).Distinct(), Is.EqualTo(new[] { "X-FAIL" }), "batched entries carry their signed verdicts and reasons");
        Assert.That(failed, Has.Count.EqualTo(n / 5));
    }

    [Test]
    public async Task An_empty_batch_appends_nothing()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, "batch.example/ledger", null));
        await store.MigrateAsync(default);
        Assert.That(await store.AppendBatchAsync([], default), Is.Empty);
        Assert.That(await store.Log.SizeAsync(default), Is.Zero);
    }
}
