using Npgsql;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The transparency log in real PostgreSQL (a fresh database per test): appends, proofs from
/// stored nodes, the append-only guarantees, and tampering by a superuser (triggers disabled with
/// session_replication_role) that <c>audit verify</c> must catch and name.
/// </summary>
[Category("Integration")]
public class TransparencyLogTests
{
    private const string Origin = "test.example/ledger";

    private sealed class Log : IAsyncDisposable
    {
        public required TestDatabase Db;
        public required NpgsqlDataSource Source;
        public required EngineSigningKey Key;
        public required LedgerStore Store;
        public required Guid Delivery;
        public AuditService Audit => new(Store, new KeyRing([Key.Public]), Origin);

        public async Task SuperuserAsync(string sql)
        {
            await using var conn = await Source.OpenConnectionAsync();
            await using var cmd = new NpgsqlCommand("set session_replication_role = replica; " + sql, conn);
            await cmd.ExecuteNonQueryAsync();
        }

        public async ValueTask DisposeAsync()
        {
            Key.Dispose();
            await Source.DisposeAsync();
            await Db.DisposeAsync();
        }
    }

    private static async Task<Log> NewLogAsync(int entries, bool checkpoint = true, string? checkpointDir = null)
    {
        var db = await TestDatabase.CreateAsync();
        var ds = db.DataSource();
        var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, checkpointDir));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
        for (var i = 0; i < entries; i++) await store.AppendAsync(Rec(id, "s" + i, i), default);
        if (checkpoint) await store.CheckpointAsync(default);
        return new Log { Db = db, Source = ds, Key = key, Store = store, Delivery = id };
    }

    private static StageRecord Rec(Guid id, string stage, int i) =>
        new(id, "p", stage, Verdict.Passed, null, null, $"sha256:{i:x64}", $"sha256:{i + 1:x64}", new Dictionary<string, string> { ["n"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    [Test]
    public async Task Every_entry_is_a_signed_leaf_provable_against_the_checkpoint_from_stored_nodes()
    {
        using var dir = new TempDir("checkpoints-");
        await using var log = await NewLogAsync(11, checkpointDir: dir.Path);
        var entries = await log.Store.ReadAsync(null, default);
        Assert.That(entries.Select(e => e.LogIndex), Is.EqualTo(Enumerable.Range(0, 11).Select(i => (long?)i)));

        var cp = await log.Audit.LatestCheckpointAsync(default);
        Assert.That(cp.TreeSize, Is.EqualTo(11));
        Assert.That(File.ReadAllText(Path.Combine(dir.Path, "latest.note")), Is.EqualTo(cp.Note));
        Assert.That(File.Exists(Path.Combine(dir.Path, "checkpoint-000000000011.note")));
        Assert.That(VerificationKey.FromPemFile(Directory.GetFiles(dir.Path, "engine-key-*.pub.pem").Single()).KeyId, Is.EqualTo(log.Key.KeyId));

        // The root from stored nodes equals the naive root over the stored envelopes.
        var leaves = await log.Store.Log.LeavesAsync(-1, 100, default);
        var naive = NaiveRoot(leaves.Select(l => Merkle.LeafHash(l.Envelope)).ToList());
        Assert.That(cp.RootHash, Is.EqualTo(naive));
        foreach (var leaf in leaves)
        {
            var proof = await log.Store.Log.InclusionProofAsync(leaf.Index, cp.TreeSize, default);
            Assert.That(MerkleProofs.VerifyInclusion(leaf.Index, cp.TreeSize, Merkle.LeafHash(leaf.Envelope), proof, cp.RootHash), Is.True, $"leaf {leaf.Index}");
        }

        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Is.Empty);
        Assert.That((result.TreeSize, result.LeavesChecked, result.CheckpointsChecked, result.LedgerEntriesChecked), Is.EqualTo((11L, 11L, 1, 11)));
        Assert.That(result.NodesChecked, Is.EqualTo(11 + 5 + 2 + 1), "every perfect subtree is stored once");
    }

    private static byte[] NaiveRoot(IReadOnlyList<byte[]> hashes)
    {
        if (hashes.Count == 1) return hashes[0];
        var k = 1;
        while (k * 2 < hashes.Count) k *= 2;
        return Merkle.NodeHash(NaiveRoot(hashes.Take(k).ToList()), NaiveRoot(hashes.Skip(k).ToList()));
    }

    [Test]
    public async Task The_log_is_consistent_with_an_earlier_checkpoint_and_a_forged_history_is_not()
    {
        await using var log = await NewLogAsync(5);
        var early = (await log.Audit.LatestCheckpointAsync(default)).Note;
        for (var i = 5; i < 13; i++) await log.Store.AppendAsync(Rec(log.Delivery, "s" + i, i), default);
        await log.Store.CheckpointAsync(default);

        var ok = await log.Audit.VerifyLogAsync(early, default);
        Assert.That(ok.Problems, Is.Empty);
        Assert.That(ok.SinceCheckpoint!.TreeSize, Is.EqualTo(5));

        // Signed by the trusted key, but for another history of 5 entries (e.g. a fork shown to someone else).
        var forged = CheckpointNote.Sign(Origin, 5, System.Security.Cryptography.SHA256.HashData("fork"u8), log.Key);
        var bad = await log.Audit.VerifyLogAsync(forged, default);
        Assert.That(bad.FirstProblem!.Code, Is.EqualTo("LOG-INCONSISTENT"));
        Assert.That(bad.FirstProblem.Message, Is.EqualTo("the log is not an extension of your checkpoint at size 5: history before it was rewritten"));
    }

    [Test]
    public async Task One_changed_byte_of_a_stored_envelope_is_caught_and_named()
    {
        await using var log = await NewLogAsync(6);
        await log.SuperuserAsync("update log_leaves set envelope = overlay(envelope placing '\\x58'::bytea from 40 for 1) where idx = 3");
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!, Is.EqualTo(new AuditProblem("LOG-LEAF-CHANGED", "log entry 3: the stored envelope does not match its leaf hash (changed after it was logged)", 3)));
    }

    [Test]
    public async Task A_changed_envelope_with_a_recomputed_leaf_hash_is_caught_by_its_signature_and_the_tree()
    {
        await using var log = await NewLogAsync(6);
        // Re-sign nothing: change the verdict inside the payload and fix up the leaf hash as an attacker would.
        var leaf = (await log.Store.Log.GetLeafAsync(2, default))!;
        var env = Pipeline.Engine.Attestations.DsseEnvelope.Parse(leaf.Envelope);
        var payload = System.Text.Encoding.UTF8.GetBytes(env.PayloadText.Replace("\"passed\"", "\"failed\""));
        var changed = (env with { Payload = payload }).CanonicalBytes();
        await using (var conn = await log.Source.OpenConnectionAsync())
        {
            await using (var set = new NpgsqlCommand("set session_replication_role = replica", conn)) await set.ExecuteNonQueryAsync();
            await using var cmd = new NpgsqlCommand("update log_leaves set envelope = $1, leaf_hash = $2 where idx = 2", conn);
            cmd.Parameters.AddWithValue(changed);
            cmd.Parameters.AddWithValue(Merkle.LeafHash(changed));
            await cmd.ExecuteNonQueryAsync();
        }

        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!.Code, Is.EqualTo("ATT-SIGNATURE-INVALID"));
        Assert.That(result.FirstProblem.LogIndex, Is.EqualTo(2));
        Assert.That(result.Problems.Select(p => p.Code), Does.Contain("LOG-NODE-CHANGED"));
        Assert.That(result.Problems.Select(p => p.Code), Does.Contain("LOG-CHECKPOINT-ROOT"));
    }

    [Test]
    public async Task A_deleted_row_is_caught_and_named()
    {
        await using var log = await NewLogAsync(6);
        await log.SuperuserAsync("update ledger_entries set log_index = null where log_index = 2; delete from log_leaves where idx = 2");
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!, Is.EqualTo(new AuditProblem("LOG-LEAF-MISSING", "log entry 2 is missing (the next stored entry is 3): entries were deleted", 2)));
    }

    [Test]
    public async Task Reordered_rows_are_caught_by_the_stored_tree()
    {
        await using var log = await NewLogAsync(6);
        // Swap entries 1 and 2 completely (every column but the index), as an attacker reordering history would.
        await log.SuperuserAsync("""
            create temp table t as select * from log_leaves where idx in (1, 2);
            update log_leaves l set leaf_hash = t.leaf_hash, envelope = t.envelope, stage = t.stage, predicate_type = t.predicate_type, subjects = t.subjects, materials = t.materials,
                recorded_at = t.recorded_at, tag = t.tag
              from t where t.idx = 3 - l.idx and l.idx in (1, 2);
            """);
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!.Code, Is.EqualTo("LOG-NODE-CHANGED"));
        Assert.That(result.FirstProblem.Message, Is.EqualTo("tree node (level 0, index 1) does not match entries 1..1 below it"), "the stored tree still has entry 1 where it was");
        Assert.That(result.Problems.Select(p => p.Code), Does.Contain("LEDGER-LEAF-MISMATCH"), "the chained ledger entries still point at the original order");
    }

    [Test]
    public async Task A_truncated_tree_is_caught_and_named()
    {
        await using var log = await NewLogAsync(6);
        await log.SuperuserAsync("delete from log_nodes where level >= 1");
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!, Is.EqualTo(new AuditProblem("LOG-NODE-MISSING", "tree node (level 1, index 0) over entries 0..1 is missing: the stored tree was truncated", 0)));
        // And proofs cannot be served from a damaged tree.
        var e = (await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => log.Store.Log.InclusionProofAsync(0, 6, default)))!;
        Assert.That(e.Code, Is.EqualTo("LOG-NODE-MISSING"));
    }

    [Test]
    public async Task A_truncated_log_tail_is_caught_by_the_signed_checkpoint()
    {
        await using var log = await NewLogAsync(6);
        await log.SuperuserAsync("update ledger_entries set log_index = null where log_index >= 4; delete from log_leaves where idx >= 4; delete from log_nodes where (idx + 1) * (1::bigint << level) > 4");
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems.Select(p => p.Code), Is.EqualTo(new[] { "LOG-TRUNCATED", "LEDGER-UNSIGNED", "LEDGER-UNSIGNED" }), "the two unlinked ledger rows are named too");
        Assert.That(result.FirstProblem!.Message, Is.EqualTo("checkpoint at size 6 is signed, but the log now holds 4 entries: entries were removed"));
    }

    [Test]
    public async Task A_replaced_checkpoint_is_caught_and_named()
    {
        await using var log = await NewLogAsync(6);
        var note = (await log.Store.Log.LatestCheckpointAsync(default))!.Note;
        var fake = note.Replace("\n6\n", "\n5\n");
        await log.SuperuserAsync($"update log_checkpoints set note = '{fake}' where tree_size = 6");
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!, Is.EqualTo(new AuditProblem("LOG-CHECKPOINT-SIGNATURE", "checkpoint at size 6: the signature of the checkpoint at size 5 does not verify with the trusted key")));

        // A checkpoint re-signed by a key the auditor does not trust.
        using var other = EngineSigningKey.Generate();
        var root = (await log.Store.Log.LatestCheckpointAsync(default))!.RootHash;
        await log.SuperuserAsync($"update log_checkpoints set note = '{CheckpointNote.Sign(Origin, 6, root, other)}' where tree_size = 6");
        result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem!.Code, Is.EqualTo("LOG-CHECKPOINT-KEY-UNKNOWN"));
    }

    [Test]
    public async Task Updates_deletes_and_truncates_are_refused_by_triggers_even_for_the_owner()
    {
        await using var log = await NewLogAsync(3);
        foreach (var sql in new[] { "update log_leaves set stage = 'x' where idx = 0", "delete from log_nodes", "truncate log_checkpoints", "update ledger_entries set verdict = 'failed'" })
        {
            await using var cmd = log.Source.CreateCommand(sql);
            var e = (await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync()))!;
            Assert.That(e.SqlState, Is.EqualTo("P0001"), sql);
            Assert.That(e.MessageText, Does.Match("ledger table (log_leaves|log_nodes|log_checkpoints|ledger_entries) is append-only: (UPDATE|DELETE|TRUNCATE) is not allowed"), sql);
        }

        Assert.That((await log.Audit.VerifyLogAsync(null, default)).Problems, Is.Empty);
    }

    [Test]
    public async Task The_engine_role_may_only_insert_and_select_the_ledger_tables()
    {
        await using var db = await TestDatabase.CreateAsync();
        var role = await db.CreateLoginRoleAsync();
        await using (var owner = db.DataSource()) await LedgerSchema.MigrateAsync(owner, role, default);
        var b = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role };
        await using var engine = NpgsqlDataSource.Create(b.ConnectionString);
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(engine, TimeProvider.System, new LogSigning(key, Origin, null));
        await LedgerSchema.CheckVersionAsync(engine, default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1", "abc", default);
        for (var i = 0; i < 3; i++) await store.AppendAsync(Rec(id, "s" + i, i), default);
        await store.CheckpointAsync(default);
        await store.FinishDeliveryAsync(id, DeliveryStatus.Accepted, null, null, null, default);

        foreach (var sql in new[]
                 {
                     "update log_leaves set stage = 'x'", "delete from log_leaves", "truncate log_nodes", "update ledger_entries set verdict = 'failed'",
                     "delete from log_checkpoints", "alter table log_leaves disable trigger user", "drop table log_nodes",
                 })
        {
            await using var cmd = engine.CreateCommand(sql);
            var e = (await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync()))!;
            Assert.That(e.SqlState, Is.EqualTo("42501"), sql);
            Assert.That(e.MessageText, Does.StartWith("permission denied for table").Or.StartWith("must be owner of table"), sql);
        }

        Assert.That((await new AuditService(store, new KeyRing([key.Public]), Origin).VerifyLogAsync(null, default)).Problems, Is.Empty);
        await using var migrateAsEngine = engine.CreateCommand("create table x (a int)");
        Assert.That((await Assert.ThrowsAsync<PostgresException>(() => migrateAsEngine.ExecuteNonQueryAsync()))!.SqlState, Is.EqualTo("42501"), "the engine role cannot create tables");
    
    }

    [Test]
    public async Task Concurrent_appends_from_two_engines_keep_one_gap_free_log()
    {
        await using var log = await NewLogAsync(0, checkpoint: false);
        await using var ds2 = log.Db.DataSource();
        var other = new LedgerStore(ds2, TimeProvider.System, new LogSigning(log.Key, Origin, null));
        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => (i % 2 == 0 ? log.Store : other).AppendAsync(Rec(log.Delivery, "s" + i, i), default)));
        await Task.WhenAll(log.Store.CheckpointAsync(default), other.CheckpointAsync(default));
        var entries = await log.Store.ReadAsync(null, default);
        Assert.That(entries.Select(e => e.LogIndex).Order(), Is.EqualTo(Enumerable.Range(0, 40).Select(i => (long?)i)));
        Assert.That(entries.All(e => e.LogIndex == e.Sequence - 1), "ledger order and log order are the same order");
        var result = await log.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Is.Empty);
        Assert.That(result.TreeSize, Is.EqualTo(40));
    }

    [Test]
    public async Task Query_filters_by_stage_verdict_digest_signer_and_time()
    {
        await using var log = await NewLogAsync(5);
        await log.Store.AppendAsync(new StageRecord(log.Delivery, "p", "scan", Verdict.Failed, "SCAN-INFECTED", "eicar", null, null, new Dictionary<string, string>()), default);
        var audit = log.Audit;
        Assert.That((await audit.QueryAsync(new LeafQuery(Verdict: "failed"), default)).Select(r => (r.LogIndex, r.Stage, r.ReasonCode)),
            Is.EqualTo(new[] { (5L, "scan", (string?)"SCAN-INFECTED") }));
        Assert.That((await audit.QueryAsync(new LeafQuery(Digest: $"sha256:{3:x64}"), default)).Select(r => r.LogIndex), Is.EqualTo(new[] { 2L, 3L }), "subject of 2, material of 3");
        Assert.That(await audit.QueryAsync(new LeafQuery(KeyId: new string('0', 64)), default), Is.Empty);
        Assert.That(await audit.QueryAsync(new LeafQuery(KeyId: log.Key.KeyId, Pipeline: "p"), default), Has.Count.EqualTo(6));
        Assert.That(await audit.QueryAsync(new LeafQuery(From: DateTimeOffset.UtcNow.AddMinutes(1)), default), Is.Empty);
        Assert.That(await audit.QueryAsync(new LeafQuery(Until: DateTimeOffset.UtcNow.AddMinutes(1), Stage: "s1"), default), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Trace_names_a_material_no_earlier_stage_produced_and_an_entry_not_yet_checkpointed()
    {
        await using var log = await NewLogAsync(0, checkpoint: false);
        InTotoStatement St(string stage, string subject, string? material) => new(
            [ResourceDescriptor.Of(stage, "sha256", subject)], PredicateTypes.ForStage(stage),
            new System.Text.Json.Nodes.JsonObject
            {
                ["stage"] = stage, ["verdict"] = "passed",
                ["delivery"] = new System.Text.Json.Nodes.JsonObject { ["id"] = log.Delivery.ToString("D"), ["pipeline"] = "p", ["tag"] = "v1.0.0" },
                ["materials"] = material is null ? new System.Text.Json.Nodes.JsonArray() : new System.Text.Json.Nodes.JsonArray(ResourceDescriptor.Of(null, "sha256", material).ToJson()),
            });
        StageRecord R(string stage) => new(log.Delivery, "p", stage, Verdict.Passed, null, null, null, null, new Dictionary<string, string>());
        string H(char c) => new(c, 64);
        await log.Store.AppendAsync(R("fetch"), St("fetch", H('a'), null), default);
        await log.Store.AppendAsync(R("verify"), St("verify", H('b'), H('a')), default);
        await log.Store.AppendAsync(R("scan"), St("scan", H('c'), H('f')), default); // consumes something nobody produced
        await log.Store.CheckpointAsync(default);
        await log.Store.AppendAsync(R("publish"), St("publish", H('d'), H('c')), default);

        var trace = await log.Audit.TraceAsync(log.Delivery.ToString(), default);
        var steps = trace.Deliveries.Single().Steps;
        Assert.That(trace.Ok, Is.False);
        Assert.That(steps.Select(x => x.Problems.Select(p => p.Code).ToArray()), Is.EqualTo(new[]
        {
            Array.Empty<string>(), [], ["TRACE-UNLINKED"], ["LOG-NOT-CHECKPOINTED"],
        }));
        Assert.That(steps[2].Problems[0].Message, Is.EqualTo($"entry 2 (scan) consumed sha256:{H('f')} which no earlier stage of this delivery produced"));
        Assert.That(steps.Take(3).All(x => x.SignatureValid && x.IncludedInCheckpoint));
        Assert.That((await log.Audit.TraceAsync("sha256:" + H('b'), default)).Deliveries.Single().DeliveryId, Is.EqualTo(log.Delivery.ToString("D")), "found by digest");
        Assert.That((await log.Audit.TraceAsync("v1.0.0", default)).Deliveries, Has.Count.EqualTo(1), "found by tag");
        Assert.That((await log.Audit.TraceAsync("sha256:" + H('9'), default)).Deliveries, Is.Empty);
    }
}
