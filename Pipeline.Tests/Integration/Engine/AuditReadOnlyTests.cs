using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The auditor's commands through the CLI with a database role that may only SELECT and the
/// engine's public key only: nothing is migrated, no private key is needed or made, every row of
/// <c>pipeline ledger</c> is shown with its proof, and a bundle is "verified" only with a trusted key.
/// </summary>
[Category("Integration")]
public class AuditReadOnlyTests
{
    private const string Origin = "readonly.example/ledger";

    private static async Task<(int Rc, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Test]
    public async Task Audit_commands_run_with_a_select_only_role_and_a_public_key()
    {
        await using var db = await TestDatabase.CreateAsync();
        using var dir = new TempDir("audit-ro-");
        var id = Guid.CreateVersion7();
        var output = "sha256:" + new string('b', 64);
        using (var key = EngineSigningKey.Generate())
        {
            File.WriteAllText(dir.Combine("engine.pub.pem"), key.Public.PublicKeyPem + "\n");
            await using var owner = db.DataSource();
            var store = new LedgerStore(owner, TimeProvider.System, new LogSigning(key, Origin, null));
            await store.MigrateAsync(default);
            await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
            await store.AppendAsync(new StageRecord(id, "p", "fetch", Verdict.Passed, null, null, null, "sha256:" + new string('a', 64), new Dictionary<string, string>()), default);
            await store.AppendAsync(new StageRecord(id, "p", "verify", Verdict.Passed, null, null, "sha256:" + new string('a', 64), output, new Dictionary<string, string>()), default);
            await store.AppendAsync(new StageRecord(id, "p", "scan", Verdict.Failed, "SCAN-INFECTED", "eicar", output, null, new Dictionary<string, string>()), default);
            await store.CheckpointAsync(default);
        }

        var role = await db.CreateLoginRoleAsync();
        await using (var owner = db.DataSource())
        await using (var grant = owner.CreateCommand($"grant usage on schema public to {role}; grant select on all tables in schema public to {role}"))
            await grant.ExecuteNonQueryAsync();
        Directory.CreateDirectory(dir.Combine("pipelines"));
        var config = dir.Combine("engine.yaml");
        File.WriteAllText(config, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "{new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString}"
            ledger:
              origin: {Origin}
            """);
        var pub = dir.Combine("engine.pub.pem");

        // engine.yaml names no clamd, registry or internal git: the engine refuses it, auditors need none of it.
        var (rc, o, e) = await Cli("check", "--config", config);
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(e, Does.Contain("clamd").And.Contain("registry"));

        (rc, o, e) = await Cli("audit", "verify", "--config", config, "--key", pub);
        Assert.That(rc, Is.EqualTo(0), e);
        Assert.That(o, Does.Contain("log verified: OK").And.Contain("append-only: 8 of 8 triggers enabled").And.Contain("no other role may change them"));

        (rc, o, e) = await Cli("audit", "query", "--verdict", "failed", "--config", config, "--key", pub);
        Assert.That(rc, Is.EqualTo(0), e);
        Assert.That(o, Does.Contain("scan     failed SCAN-INFECTED").And.Contain("1 entry"));

        (rc, o, e) = await Cli("audit", "trace", id.ToString(), "--config", config, "--key", pub);
        Assert.That(rc, Is.EqualTo(0), e + o);
        Assert.That(o, Does.Contain("CHAIN VERIFIED"));

        (rc, o, e) = await Cli("ledger", "--config", config, "--key", pub);
        Assert.That(rc, Is.EqualTo(0), e);
        Assert.That(o.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Contains("[signed #", StringComparison.Ordinal)), Is.EqualTo(new[] { true, true, true }));
        Assert.That(o, Does.Not.Contain("UNVERIFIED"));

        var bundle = dir.Combine("bundle.json");
        (rc, _, e) = await Cli("audit", "export", output, "-o", bundle, "--config", config, "--key", pub);
        Assert.That(rc, Is.EqualTo(0), e);

        Assert.That(Directory.Exists(dir.Combine("work", "keys")), Is.False, "no dev key was made");
        await using (var owner = db.DataSource())
        await using (var q = owner.CreateCommand("select count(*) from log_checkpoints"))
            Assert.That(await q.ExecuteScalarAsync(), Is.EqualTo(1L), "nothing was signed");

        // Without a trusted key the auditor is told so (usage error), not given a dev key.
        (rc, _, e) = await Cli("audit", "verify", "--config", config);
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(e, Does.StartWith("AUDIT-NO-KEYS: no trusted engine key: pass --key ENGINE.pub.pem"));

        // A schema the engine has not migrated yet is reported, not migrated.
        await using (var owner = db.DataSource())
        await using (var down = owner.CreateCommand($"delete from schema_migrations where version = {LedgerSchema.LatestVersion}"))
            await down.ExecuteNonQueryAsync();
        (rc, _, e) = await Cli("audit", "verify", "--config", config, "--key", pub);
        Assert.That(rc, Is.EqualTo(3));
        Assert.That(e, Does.StartWith("DB-SCHEMA-OLD:"));
        await using (var owner = db.DataSource())
        await using (var q = owner.CreateCommand($"select count(*) from schema_migrations where version = {LedgerSchema.LatestVersion}"))
            Assert.That(await q.ExecuteScalarAsync(), Is.EqualTo(0L));
    }

    [Test]
    public async Task A_bundle_is_verified_only_against_a_trusted_key()
    {
        await using var db = await TestDatabase.CreateAsync();
        using var dir = new TempDir("audit-bundle-");
        using var key = EngineSigningKey.Generate();
        using var stranger = EngineSigningKey.Generate();
        File.WriteAllText(dir.Combine("engine.pub.pem"), key.Public.PublicKeyPem);
        await using var ds = db.DataSource();
        // Anyone can make a consistent bundle with their own key: here a stranger's log.
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(stranger, Origin, null));
        await store.MigrateAsync(default);
        var id = Guid.CreateVersion7();
        var image = "sha256:" + new string('c', 64);
        await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
        await store.AppendAsync(new StageRecord(id, "p", "push", Verdict.Passed, null, null, null, image, new Dictionary<string, string>()), default);
        await store.CheckpointAsync(default);
        var bundle = await new Pipeline.Engine.Audit.AuditService(store, new KeyRing([stranger.Public]), Origin).ExportAsync(image, default);
        var file = dir.Combine("bundle.json");
        File.WriteAllBytes(file, bundle.ToJsonBytes());

        var (rc, o, e) = await Cli("audit", "verify-bundle", file);
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(o, Does.Not.Contain("verified: OK").And.Contain("NOT TRUSTED"));
        Assert.That(e, Does.StartWith($"BUNDLE-KEY-UNTRUSTED: the bundle is consistent, but its signatures were checked only with the keys it carries itself ({stranger.KeyId})"));

        (rc, o, e) = await Cli("audit", "verify-bundle", file, "--key", dir.Combine("engine.pub.pem"));
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(o, Does.Not.Contain("verified: OK"));
        Assert.That(e, Does.Contain("LOG-CHECKPOINT-KEY-UNKNOWN"));

        File.WriteAllText(dir.Combine("stranger.pub.pem"), stranger.Public.PublicKeyPem);
        (rc, o, e) = await Cli("audit", "verify-bundle", file, "--key", dir.Combine("stranger.pub.pem"));
        Assert.That(rc, Is.EqualTo(0), e);
        Assert.That(o, Does.Contain("bundle verified: OK"));
    }
}
