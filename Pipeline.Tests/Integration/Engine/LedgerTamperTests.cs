using System.Text.Json.Nodes;
using Npgsql;
using Pipeline.Engine;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// A database superuser attacks the ledger (triggers bypassed with session_replication_role): every
/// value an auditor sees must be proven by signed data, so each attack is named by <c>audit verify</c>
/// and shown as unproven by <c>pipeline ledger</c>; the engine refuses to sign a checkpoint over a
/// rewritten history.
/// </summary>
[Category("Integration")]
public class LedgerTamperTests
{
    private const string Origin = "tamper.example/ledger";

    private sealed class Lab : IAsyncDisposable
    {
        public required TestDatabase Db;
        public required NpgsqlDataSource Source;
        public required EngineSigningKey Key;
        public required LedgerStore Store;
        public required Guid Delivery;
        public required TempDir Checkpoints;
        public AuditService Audit => new(Store, new KeyRing([Key.Public]), Origin);

        public async Task SuperuserAsync(string sql)
        {
            await using var conn = await Source.OpenConnectionAsync();
            await using var cmd = new NpgsqlCommand("set session_replication_role = replica; " + sql, conn);
            await cmd.ExecuteNonQueryAsync();
        }

        public async Task<long> ScalarAsync(string sql)
        {
            await using var cmd = Source.CreateCommand(sql);
            return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }

        /// <summary>Recomputes the hash chain of ledger_entries from the first entry, as an attacker covering a change would.</summary>
        public async Task RechainAsync()
        {
            var prev = LedgerEntry.GenesisHash;
            foreach (var e in await Store.ReadAsync(null, default))
            {
                var hash = LedgerEntry.ComputeHash(e.Sequence, e.Record, e.RecordedAt, prev);
                await using var conn = await Source.OpenConnectionAsync();
                await using (var set = new NpgsqlCommand("set session_replication_role = replica", conn)) await set.ExecuteNonQueryAsync();
                await using var cmd = new NpgsqlCommand("update ledger_entries set prev_hash = $1, entry_hash = $2 where seq = $3", conn);
                cmd.Parameters.AddWithValue(prev);
                cmd.Parameters.AddWithValue(hash);
                cmd.Parameters.AddWithValue(e.Sequence);
                await cmd.ExecuteNonQueryAsync();
                prev = hash;
            }
        }

        public async ValueTask DisposeAsync()
        {
            Key.Dispose();
            await Source.DisposeAsync();
            await Db.DisposeAsync();
            Checkpoints.Dispose();
        }
    }

    /// <summary>fetch, verify, scan passed; publish FAILED (entry 4, log entry 3); checkpoint at 4.</summary>
    private static async Task<Lab> NewLabAsync()
    {
        var db = await TestDatabase.CreateAsync();
        var ds = db.DataSource();
        var key = EngineSigningKey.Generate();
        var checkpoints = new TempDir("tamper-cp-");
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, checkpoints.Path));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
        var lab = new Lab { Db = db, Source = ds, Key = key, Store = store, Delivery = id, Checkpoints = checkpoints };
        await AppendAsync(lab, "fetch", 'a', null);
        await AppendAsync(lab, "verify", 'b', 'a');
        await AppendAsync(lab, "scan", 'c', 'b');
        await AppendAsync(lab, "publish", 'd', 'c', failed: true);
        await store.CheckpointAsync(default);
        return lab;
    }

    private static Task<LedgerEntry> AppendAsync(Lab lab, string stage, char subject, char? material, bool failed = false)
    {
        var verdict = failed ? "failed" : "passed";
        var predicate = new JsonObject
        {
            ["stage"] = stage, ["verdict"] = verdict,
            ["delivery"] = new JsonObject { ["id"] = lab.Delivery.ToString("D"), ["pipeline"] = "p", ["supplier"] = "ACME GmbH", ["tag"] = "v1.0.0" },
            ["materials"] = material is null ? new JsonArray() : new JsonArray(ResourceDescriptor.Of(null, "sha256", new string(material.Value, 64)).ToJson()),
        };
        if (failed)
        {
            predicate["reasonCode"] = "PUBLISH-REJECTED";
            predicate["reason"] = "the internal git refused the tag";
        }

        var record = new StageRecord(lab.Delivery, "p", stage, failed ? Verdict.Failed : Verdict.Passed, failed ? "PUBLISH-REJECTED" : null, failed ? "the internal git refused the tag" : null,
            material is null ? null : "sha256:" + new string(material.Value, 64), "sha256:" + new string(subject, 64), new Dictionary<string, string> { ["step"] = stage });
        return lab.Store.AppendAsync(record, new InTotoStatement([ResourceDescriptor.Of(stage, "sha256", new string(subject, 64))], PredicateTypes.ForStage(stage), predicate), default);
    }

    private static string[] Codes(LogVerification v) => v.Problems.Select(p => p.Code).ToArray();

    [Test]
    public async Task An_untouched_ledger_verifies_and_every_row_is_shown_as_signed()
    {
        await using var lab = await NewLabAsync();
        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Is.Empty);
        Assert.That(result.Guards!.EnabledTriggers, Has.Count.EqualTo(8));
        var rows = await LedgerView.ReadCheckedAsync(lab.Store, lab.Audit, null, default);
        Assert.That(rows.Select(r => r.Proof), Is.EqualTo(new[] { "signed #0", "signed #1", "signed #2", "signed #3" }));
    }

    [Test]
    public async Task Cutting_the_last_leaf_with_its_nodes_and_checkpoint_while_its_row_stays_is_caught_and_the_engine_will_not_sign_over_it()
    {
        await using var lab = await NewLabAsync();
        var notesBefore = File.ReadAllText(Path.Combine(lab.Checkpoints.Path, "latest.note"));
        await lab.SuperuserAsync("delete from log_leaves where idx = 3; delete from log_nodes where (idx + 1) * (1::bigint << level) > 3; delete from log_checkpoints where tree_size > 3");

        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(Codes(result), Does.Contain("LEDGER-LEAF-MISSING"));
        Assert.That(result.Problems.Single(p => p.Code == "LEDGER-LEAF-MISSING").Message,
            Is.EqualTo($"ledger entry 4 (publish failed of delivery {lab.Delivery}) points at log entry 3, which is not in the log: the log was cut"));
        Assert.That((await LedgerView.ReadCheckedAsync(lab.Store, lab.Audit, null, default))[3].Proof, Does.StartWith("LEDGER-LEAF-MISSING"));

        // The engine's own last checkpoint is outside the database: it refuses to sign the shorter log.
        var e = (await Assert.ThrowsAsync<PipelineException>(() => lab.Store.CheckpointAsync(default)))!;
        Assert.That(e.Code, Is.EqualTo("LOG-CHECKPOINT-REGRESSED"));
        Assert.That(e.Message, Does.Contain("the log holds 3 entries but this engine last signed a checkpoint at size 4"));
        Assert.That(await lab.ScalarAsync("select count(*) from log_checkpoints where tree_size = 3"), Is.Zero, "nothing was signed");
        Assert.That(File.ReadAllText(Path.Combine(lab.Checkpoints.Path, "latest.note")), Is.EqualTo(notesBefore));

        // And audit verify against that kept checkpoint names the truncation.
        Assert.That(Codes(await lab.Audit.VerifyLogAsync(notesBefore, default)), Does.Contain("LOG-TRUNCATED"));
    }

    [Test]
    public async Task A_failed_row_turned_passed_with_its_link_cut_and_the_chain_recomputed_is_caught()
    {
        await using var lab = await NewLabAsync();
        await lab.SuperuserAsync("update ledger_entries set verdict = 'passed', reason_code = null, reason = null, log_index = null where seq = 4");
        await lab.RechainAsync();
        Assert.That(await lab.Store.VerifyChainAsync(default), Is.Null, "the attacker's chain is intact: the chain alone proves nothing");

        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(Codes(result), Is.EqualTo(new[] { "LEDGER-UNSIGNED", "LOG-LEAF-UNLINKED" }));
        Assert.That(result.Problems[0].Message, Is.EqualTo($"ledger entry 4 (publish passed of delivery {lab.Delivery}) points at no signed log entry: its values are not proven (a row was added or unlinked)"));
        Assert.That(result.Problems[1].Message, Is.EqualTo($"log entry 3 (publish failed of delivery {lab.Delivery}) has no ledger entry: a ledger row was deleted or unlinked"));
        var rows = await LedgerView.ReadCheckedAsync(lab.Store, lab.Audit, lab.Delivery, default);
        Assert.That((rows[3].Verified, rows[3].Proof), Is.EqualTo((false, "UNSIGNED (no log entry)")));
    }

    [TestCase("verdict = 'passed', reason_code = null, reason = null", "LEDGER-LEAF-MISMATCH", "ledger entry 4 does not match log entry 3 it points at")]
    [TestCase("reason = 'all fine'", "LEDGER-LEAF-MISMATCH", "ledger entry 4: its row (reason, digests, evidence or time) is not the record log entry 3 signed")]
    [TestCase("output_digest = 'sha256:" + "e" + "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'", "LEDGER-LEAF-MISMATCH", "ledger entry 4: its row (reason, digests, evidence or time) is not the record log entry 3 signed")]
    [TestCase("evidence = '{\"step\":\"other\"}'", "LEDGER-LEAF-MISMATCH", "ledger entry 4: its row (reason, digests, evidence or time) is not the record log entry 3 signed")]
    [TestCase("recorded_at = recorded_at - interval '3 days'", "LEDGER-LEAF-MISMATCH", "ledger entry 4: its row (reason, digests, evidence or time) is not the record log entry 3 signed")]
    [TestCase("log_index = 2", "LEDGER-LEAF-SHARED", "ledger entries 3 and 4 both point at log entry 2")]
    public async Task Any_changed_column_of_a_ledger_row_with_the_chain_recomputed_is_caught(string set, string code, string message)
    {
        await using var lab = await NewLabAsync();
        await lab.SuperuserAsync($"alter table ledger_entries drop constraint if exists ledger_entries_log_index_key; update ledger_entries set {set} where seq = 4");
        await lab.RechainAsync();
        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(result.FirstProblem, Is.EqualTo(new AuditProblem(code, message, code == "LEDGER-LEAF-SHARED" ? 2 : 3)));
        Assert.That((await LedgerView.ReadCheckedAsync(lab.Store, lab.Audit, null, default))[3].Verified, Is.False);
    }

    [Test]
    public async Task Deleting_the_last_ledger_row_is_caught()
    {
        await using var lab = await NewLabAsync();
        await lab.SuperuserAsync("delete from ledger_entries where seq = (select max(seq) from ledger_entries)");
        Assert.That(await lab.Store.VerifyChainAsync(default), Is.Null, "a cut tail leaves the chain intact");
        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Is.EqualTo(new[]
        {
            new AuditProblem("LOG-LEAF-UNLINKED", $"log entry 3 (publish failed of delivery {lab.Delivery}) has no ledger entry: a ledger row was deleted or unlinked", 3),
        }));
    }

    [TestCase("supplier = 'Someone Else'", "supplier")]
    [TestCase("recorded_at = recorded_at + interval '1 year'", "time")]
    [TestCase("materials = array['sha256:" + "0000000000000000000000000000000000000000000000000000000000000000']", "materials")]
    [TestCase("key_id = '" + "0000000000000000000000000000000000000000000000000000000000000000'", "key id")]
    [TestCase("tag = 'v9.9.9'", "tag")]
    [TestCase("pipeline = 'q'", "pipeline")]
    [TestCase("subjects = array[]::text[]", "subjects")]
    [TestCase("delivery_id = gen_random_uuid()", "delivery")]
    public async Task A_changed_lookup_column_is_caught_and_named_and_never_shown(string set, string column)
    {
        await using var lab = await NewLabAsync();
        await lab.SuperuserAsync($"update log_leaves set {set} where idx = 3");
        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Is.EqualTo(new[]
        {
            new AuditProblem("LOG-INDEX-MISMATCH", $"log entry 3: the lookup columns ({column}) disagree with the signed envelope", 3),
        }));
    }

    [Test]
    public async Task Query_and_trace_show_signed_values_only_and_trace_by_tag_does_not_read_the_deliveries_table()
    {
        await using var lab = await NewLabAsync();
        var signedTime = (await lab.Audit.QueryAsync(new LeafQuery(Verdict: "failed"), default)).Single().RecordedAt;
        await lab.SuperuserAsync("update log_leaves set supplier = 'Someone Else', recorded_at = recorded_at - interval '1 year' where idx = 3");
        await lab.SuperuserAsync("update deliveries set tag = 'v0.0.1'");

        // The forged supplier never appears as a fact: the row matched the column, not the signed statement.
        Assert.That(await lab.Audit.QueryAsync(new LeafQuery(Supplier: "Someone Else"), default), Is.Empty);
        var trace = await lab.Audit.TraceAsync("v1.0.0", default);
        var failed = trace.Deliveries.Single().Steps.Single(s => s.Record.Verdict == "failed").Record;
        Assert.That((failed.Supplier, failed.RecordedAt), Is.EqualTo(("ACME GmbH", signedTime)), "supplier and time come from the signed statement");
        Assert.That(signedTime, Is.Not.Null);
        Assert.That((await lab.Audit.TraceAsync("v0.0.1", default)).Deliveries, Is.Empty, "the deliveries table is not where trace looks");
        // Hiding the rejection from the supplier filter is named by audit verify.
        Assert.That(Codes(await lab.Audit.VerifyLogAsync(null, default)), Is.EqualTo(new[] { "LOG-INDEX-MISMATCH" }));
    }

    [Test]
    public async Task The_engine_refuses_to_sign_a_checkpoint_over_a_history_rewritten_in_the_database()
    {
        await using var lab = await NewLabAsync();
        var kept = File.ReadAllText(Path.Combine(lab.Checkpoints.Path, "latest.note"));
        // Rewrite: drop the failed publish (leaf, nodes, row, checkpoint) and log a passed one in its place, through the engine's own code.
        await lab.SuperuserAsync("delete from ledger_entries where seq = 4; delete from log_leaves where idx = 3; delete from log_nodes where (idx + 1) * (1::bigint << level) > 3; delete from log_checkpoints");
        await AppendAsync(lab, "publish", 'd', 'c');
        var checkpoints = await lab.ScalarAsync("select count(*) from log_checkpoints");

        var e = (await Assert.ThrowsAsync<PipelineException>(() => lab.Store.CheckpointAsync(default)))!;
        Assert.That(e.Code, Is.EqualTo("LOG-CHECKPOINT-INCONSISTENT"));
        Assert.That(e.Message, Is.EqualTo("the log's first 4 entries no longer have the root this engine signed (checkpoint folder): history was rewritten in the database; nothing was signed"));
        Assert.That(await lab.ScalarAsync("select count(*) from log_checkpoints"), Is.EqualTo(checkpoints), "nothing was signed");
        Assert.That(File.ReadAllText(Path.Combine(lab.Checkpoints.Path, "latest.note")), Is.EqualTo(kept));
    }

    [Test]
    public async Task A_planted_leaf_after_the_last_checkpoint_is_refused_before_signing()
    {
        await using var lab = await NewLabAsync();
        await AppendAsync(lab, "push", 'e', 'd');
        await lab.SuperuserAsync("update log_leaves set envelope = overlay(envelope placing '\\x58'::bytea from 40 for 1) where idx = 4");
        var e = (await Assert.ThrowsAsync<PipelineException>(() => lab.Store.CheckpointAsync(default)))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("LOG-LEAF-CHANGED", "log entry 4: the stored envelope does not match its leaf hash or tree node; nothing was signed")));
    }

    [Test]
    public async Task Audit_verify_names_a_disabled_trigger_and_a_write_grant()
    {
        await using var lab = await NewLabAsync();
        var role = await lab.Db.CreateLoginRoleAsync();
        await using (var cmd = lab.Source.CreateCommand($"alter table log_leaves disable trigger log_leaves_append_only; grant delete on ledger_entries to {role}"))
            await cmd.ExecuteNonQueryAsync();
        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Is.EqualTo(new[]
        {
            new AuditProblem("LEDGER-GUARD-TRIGGER", "append-only trigger log_leaves.log_leaves_append_only is disabled: the table can be changed without a trace in the database"),
            new AuditProblem("LEDGER-GUARD-GRANT", $"DELETE on ledger_entries to {role}: a role other than the owner may change or unprotect a ledger table"),
        }));
        Assert.That(result.Guards!.EnabledTriggers, Has.Count.EqualTo(7));
    }

    [Test]
    public async Task A_replayed_leaf_and_a_changed_checkpoint_key_column_are_caught()
    {
        await using var lab = await NewLabAsync();
        await lab.SuperuserAsync("""
            insert into log_leaves (idx, leaf_hash, envelope, delivery_id, pipeline, supplier, stage, verdict, predicate_type, key_id, subjects, materials, recorded_at, tag)
              select 4, leaf_hash, envelope, delivery_id, pipeline, supplier, stage, verdict, predicate_type, key_id, subjects, materials, recorded_at, tag from log_leaves where idx = 2;
            update log_checkpoints set key_id = '0000000000000000000000000000000000000000000000000000000000000000';
            """);
        var result = await lab.Audit.VerifyLogAsync(null, default);
        Assert.That(result.Problems, Does.Contain(new AuditProblem("LOG-LEAF-DUPLICATE", "log entry 4 is a copy of log entry 2: an entry was replayed", 4)));
        Assert.That(result.Problems, Does.Contain(new AuditProblem("LOG-CHECKPOINT-MISMATCH", "checkpoint at size 4: the stored row (size, root or key id) disagrees with its signed note")));
    }
}
