using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using Pipeline.Engine.Api;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// <c>pipeline audit serve</c> runs like the other audit commands: on a role without write rights,
/// with a public key only, nothing migrated, every transaction read-only, and an engine.yaml whose
/// clamd and registry sections are missing or incomplete.
/// </summary>
[Category("Integration")]
public class AuditServeReadOnlyTests
{
    private const string Origin = "serve-ro.example/ledger";

    [Test]
    public async Task The_audit_API_answers_on_a_select_only_role_with_nothing_migrated()
    {
        await using var db = await TestDatabase.CreateAsync();
        using var dir = new TempDir("audit-serve-ro-");
        var id = Guid.CreateVersion7();
        using (var key = EngineSigningKey.Generate())
        {
            File.WriteAllText(dir.Combine("engine.pub.pem"), key.Public.PublicKeyPem + "\n");
            await using var owner = db.DataSource();
            var store = new LedgerStore(owner, TimeProvider.System, new LogSigning(key, Origin, null));
            await store.MigrateAsync(default);
            await store.StartDeliveryAsync(id, "p", "v1.0.0", "abc", default);
            await store.AppendAsync(new StageRecord(id, "p", "fetch", Verdict.Passed, null, null, null, "sha256:" + new string('a', 64), new Dictionary<string, string>()), default);
            await store.CheckpointAsync(default);
        }

        var role = await db.CreateLoginRoleAsync();
        await using (var owner = db.DataSource())
        await using (var grant = owner.CreateCommand($"grant usage on schema public to {role}; grant select on all tables in schema public to {role}"))
            await grant.ExecuteNonQueryAsync();
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        File.WriteAllText(dir.Combine("auditors.sha256"), $"{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))} carol@audit.example\n");
        var config = dir.Combine("engine.yaml");
        // clamd names neither configFile nor limits and the registry's credentials file does not exist:
        // the engine would refuse both; the audit API needs neither. The pipelines folder does not exist either.
        File.WriteAllText(config, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "{new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString}"
            ledger:
              origin: {Origin}
            audit:
              apiTokensFile: auditors.sha256
            clamd:
              endpoints: [tcp://127.0.0.1:3310]
            registry:
              url: http://127.0.0.1:5000
              credentialsFile: missing-registry-credentials
            """);
        var engineErrors = Assert.Throws<ConfigurationException>(() => EngineSettingsLoader.Load(config));
        Assert.That(engineErrors!.Message, Does.Contain("clamd: the engine must know what clamd really scans").And.Contain("missing-registry-credentials"));

        var migrations = await MigrationsAsync(db);
        await using (var session = await AuditSession.OpenAsync(config, [dir.Combine("engine.pub.pem")], TimeProvider.System, Serilog.Core.Logger.None, default))
        await using (var server = await AuditApiServer.StartAsync(session, "http://127.0.0.1:0", allowRemote: false, default))
        using (var http = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()) })
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var verify = await http.GetAsync(new Uri("/api/verify", UriKind.Relative));
            var body = JsonNode.Parse(await verify.Content.ReadAsStringAsync())!;
            Assert.That(verify.StatusCode, Is.EqualTo(HttpStatusCode.OK), body.ToJsonString());
            Assert.That((bool)body["ok"]!, Is.True, body.ToJsonString());
            var trace = await http.GetAsync(new Uri("/api/trace/" + id, UriKind.Relative));
            Assert.That(trace.StatusCode, Is.EqualTo(HttpStatusCode.OK), await trace.Content.ReadAsStringAsync());
        }

        Assert.That(await MigrationsAsync(db), Is.EqualTo(migrations), "nothing was migrated");
        Assert.That(Directory.Exists(dir.Combine("work", "keys")), Is.False, "no dev key was made");

        // The CLI serves the same way, and refuses an unmigrated schema instead of migrating it.
        await using (var owner = db.DataSource())
        await using (var down = owner.CreateCommand($"delete from schema_migrations where version = {LedgerSchema.LatestVersion}"))
            await down.ExecuteNonQueryAsync();
        var (o, e) = (new StringWriter(), new StringWriter());
        var rc = await PipelineCli.RunAsync(["audit", "serve", "--urls", "http://127.0.0.1:0", "--config", config, "--key", dir.Combine("engine.pub.pem")], o, e);
        Assert.That(rc, Is.EqualTo(3), o.ToString());
        Assert.That(e.ToString(), Does.StartWith("DB-SCHEMA-OLD:"));
        Assert.That(await MigrationsAsync(db), Is.EqualTo(migrations - 1), "the CLI did not migrate either");
    }

    [Test]
    public async Task An_audit_session_cannot_write_even_on_a_role_that_could()
    {
        await using var db = await TestDatabase.CreateAsync();
        await using (var owner = db.DataSource())
            await new LedgerStore(owner, TimeProvider.System).MigrateAsync(default);
        await using var readOnly = AuditSession.CreateReadOnlyDataSource(new DatabaseSettings(db.ConnectionString, null));
        await using var insert = readOnly.CreateCommand("insert into deliveries(id, pipeline, tag, tag_object_id, status, started_at) values (gen_random_uuid(), 'p', 't', 'x', 'running', now())");
        var ex = await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync());
        Assert.That(ex!.SqlState, Is.EqualTo(PostgresErrorCodes.ReadOnlySqlTransaction));
    }

    private static async Task<long> MigrationsAsync(TestDatabase db)
    {
        await using var owner = db.DataSource();
        await using var q = owner.CreateCommand("select count(*) from schema_migrations");
        return (long)(await q.ExecuteScalarAsync())!;
    }
}
