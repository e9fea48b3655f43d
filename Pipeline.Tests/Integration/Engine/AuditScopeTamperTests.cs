using System.Text.Json;
using Npgsql;
using Pipeline.Engine;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Tenancy;
using Pipeline.Tests.Support;
using Merkle = Pipeline.Checkup.Signatures.Sigstore.Merkle;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// A tenant's scope when an entry does not verify (real PostgreSQL, the log changed as an attacker
/// with database rights would): its content is unproven, so it could be any tenant's. A scoped
/// auditor sees only its index and code, a scoped export is refused, and verify withholds the details.
/// </summary>
[Category("Integration")]
public class AuditScopeTamperTests
{
    private const string Origin = "scope.example/ledger";

    private static readonly TenantDirectory Tenants = new([
        new Tenant("land-a", "Landesamt A", ["pa"], "engine.yaml", 1),
        new Tenant("land-b", "Landesamt B", ["pb"], "engine.yaml", 5),
    ]);

    private static string H(char c) => "sha256:" + new string(c, 64);

    [Test]
    public async Task An_entry_that_does_not_verify_shows_a_scoped_auditor_only_its_index_and_code_and_blocks_a_scoped_export()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        using var key = EngineSigningKey.Generate();
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, null));
        await store.MigrateAsync(default);
        var (a, b) = (Guid.CreateVersion7(), Guid.CreateVersion7());
        await store.StartDeliveryAsync(a, "pa", "v1.0.0", "abc", default);
        await store.StartDeliveryAsync(b, "pb", "v1.0.0", "def", default);
        StageRecord R(Guid id, string pipeline, string stage, char input, char output) =>
            new(id, pipeline, stage, Verdict.Passed, null, null, H(input), H(output), new Dictionary<string, string>());
        await store.AppendAsync(R(a, "pa", "fetch", '1', 'a'), default);
        await store.AppendAsync(R(b, "pb", "fetch", '2', 'b'), default);
        await store.AppendAsync(R(b, "pb", "verify", 'b', 'c'), default);
        await store.CheckpointAsync(default);
        var audit = new AuditService(store, new KeyRing([key.Public]), Origin);
        var landA = AuditScope.ForTenants(Tenants, ["land-a"]);

        var before = await audit.TraceAsync(a.ToString("D"), landA, default);
        Assert.That(before.Deliveries.Single().Steps, Has.Count.EqualTo(1));
        Assert.That((await audit.ExportAsync(H('a'), landA, default)).Entries.Select(e => e.LogIndex), Is.EqualTo(new[] { 0L }));

        // Entry 2 (land-b's) changed without a new signature, and its columns moved into land-a's delivery.
        var leaf = (await store.Log.GetLeafAsync(2, default))!;
        var env = DsseEnvelope.Parse(leaf.Envelope);
        var changed = (env with { Payload = System.Text.Encoding.UTF8.GetBytes(env.PayloadText.Replace("\"passed\"", "\"failed\"", StringComparison.Ordinal)) }).CanonicalBytes();
        await using (var conn = await ds.OpenConnectionAsync())
        {
            await using (var set = new NpgsqlCommand("set session_replication_role = replica", conn)) await set.ExecuteNonQueryAsync();
            await using var cmd = new NpgsqlCommand("update log_leaves set envelope = $1, leaf_hash = $2, delivery_id = $3, pipeline = 'pa' where idx = 2", conn);
            cmd.Parameters.AddWithValue(changed);
            cmd.Parameters.AddWithValue(Merkle.LeafHash(changed));
            cmd.Parameters.AddWithValue(a);
            await cmd.ExecuteNonQueryAsync();
        }

        // land-a: the broken entry is named by index and code only; nothing of land-b.
        var trace = await audit.TraceAsync(a.ToString("D"), landA, default);
        var steps = trace.Deliveries.Single().Steps;
        Assert.That(steps.Select(s => (s.Record.LogIndex, s.SignatureValid)), Is.EqualTo(new[] { (0L, true), (2L, false) }));
        Assert.That((steps[1].Record.Pipeline, steps[1].Record.DeliveryId, steps[1].Record.Stage), Is.EqualTo(((string?)null, (string?)null, "")));
        Assert.That(steps[1].Problems.Single().Code, Is.EqualTo("ATT-SIGNATURE-INVALID"));
        var json = JsonSerializer.Serialize(trace);
        Assert.That(json, Does.Not.Contain(b.ToString("D")).And.Not.Contain("\"pb\"").And.Not.Contain(H('c')[7..]));
        var all = (await audit.TraceAsync(a.ToString("D"), default)).Deliveries.Single().Steps;
        Assert.That((all[1].Record.Pipeline, all[1].Record.Stage), Is.EqualTo(("pa", "verify")), "an all-tenant auditor sees the (unproven) columns");

        var e = (await Assert.ThrowsAsync<PipelineException>(() => audit.ExportAsync(H('a'), landA, default)))!;
        Assert.That(e.Code, Is.EqualTo(AuditService.ScopeUnverifiable));
        Assert.That(e.Message, Does.StartWith($"log entry 2 of delivery {a:D} does not verify (ATT-SIGNATURE-INVALID)"));

        // verify: the same problems by code and index; their details only for the all-tenant auditor.
        var whole = await audit.VerifyLogAsync(null, default);
        var scoped = await audit.VerifyLogAsync(null, landA, default);
        Assert.That(scoped.Problems.Select(p => (p.Code, p.LogIndex)), Is.EqualTo(whole.Problems.Select(p => (p.Code, p.LogIndex))));
        Assert.That(scoped.Problems, Is.Not.Empty);
        Assert.That(whole.Problems[0].Message, Does.Contain("signature by key"), "the all-tenant auditor gets the details");
        Assert.That(scoped.Problems.Select(p => p.Message), Has.None.Contain(b.ToString("D")));
        Assert.That(scoped.Problems.Select(p => p.Message), Is.All.EndsWith("details are shown only to all-tenant auditors (pipeline audit verify)"));
    }
}
