using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Hosting;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>engine.yaml's attestation, ledger and migration settings, with a real database and roles.</summary>
[Category("Integration")]
public class EngineLedgerConfigTests
{
    private static string Config(TempDir dir, string connection, string extra)
    {
        Directory.CreateDirectory(dir.Combine("pipelines"));
        var path = dir.Combine("engine.yaml");
        File.WriteAllText(path, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "{connection}"
            {extra}
            clamd:
              endpoints: [tcp://127.0.0.1:3310]
              limits:
                maxFileSize: 64MiB
                maxScanSize: 256MiB
                maxRecursion: 8
                maxFiles: 10000
                streamMaxLength: 64MiB
            registry:
              url: http://127.0.0.1:5000
            internalGit:
              url: http://127.0.0.1:8088/git/internal
            """);
        return path;
    }

    [Test]
    public async Task With_a_migration_connection_the_owner_migrates_and_the_engine_role_signs_with_the_configured_key()
    {
        await using var db = await TestDatabase.CreateAsync();
        var role = await db.CreateLoginRoleAsync();
        using var dir = new TempDir("engine-cfg-");
        using (var key = EngineSigningKey.Generate()) key.WritePrivatePem(dir.Combine("engine.pem"));
        using (var old = EngineSigningKey.Generate()) File.WriteAllText(dir.Combine("old.pub.pem"), old.Public.PublicKeyPem);
        var engineConn = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = role }.ConnectionString;
        var path = Config(dir, engineConn, $"""
              migrationConnectionString: "{db.ConnectionString}"
            attestation:
              signingKeyFile: engine.pem
              verificationKeys: [old.pub.pem]
            ledger:
              checkpointDir: cps
              origin: cfg.example/ledger
            """);
        var sink = new CapturingSink();
        var log = sink.Logger();
        await using (var engine = await PipelineEngine.StartAsync(path, TimeProvider.System, log, default))
        {
            Assert.That(engine.SigningKey.KeyId, Is.EqualTo(VerificationKey.FromPemFile(dir.Combine("engine.pem")).KeyId));
            Assert.That(engine.Keys.Keys, Has.Count.EqualTo(2), "signing key + retired verification key");
            Assert.That(engine.Settings.Ledger, Is.EqualTo(new LedgerSettings(dir.Combine("cps"), "cfg.example/ledger")));
            var id = Guid.CreateVersion7();
            await engine.Ledger.StartDeliveryAsync(id, "p", "v1", "abc", default);
            await engine.Ledger.AppendAsync(new Pipeline.Engine.Ledger.StageRecord(id, "p", "fetch", Pipeline.Engine.Ledger.Verdict.Passed, null, null, null, null, new Dictionary<string, string>()), default);
            var cp = await engine.Ledger.CheckpointAsync(default);
            Assert.That(cp.Note, Does.StartWith("cfg.example/ledger\n1\n"));
            Assert.That(File.ReadAllText(dir.Combine("cps", "latest.note")), Is.EqualTo(cp.Note));
            Assert.That((await engine.Audit.VerifyLogAsync(null, default)).Problems, Is.Empty);
        }

        Assert.That(sink.Lines, Has.Some.Contains($"engine role \"{role}\" may only insert into and read the ledger tables"));
        Assert.That(sink.Lines, Has.None.Contains("dev mode"));
    
    }

    [Test]
    public async Task Without_an_attestation_section_a_dev_key_is_made_once_and_the_logs_say_so()
    {
        await using var db = await TestDatabase.CreateAsync();
        using var dir = new TempDir("engine-cfg-");
        var path = Config(dir, db.ConnectionString, "");
        var sink = new CapturingSink();
        var log = sink.Logger();
        string first;
        await using (var engine = await PipelineEngine.StartAsync(path, TimeProvider.System, log, default)) first = engine.SigningKey.KeyId;
        await using (var engine = await PipelineEngine.StartAsync(path, TimeProvider.System, log, default))
            Assert.That(engine.SigningKey.KeyId, Is.EqualTo(first), "the dev key is kept in the work folder");
        var keyFile = dir.Combine("work", "keys", "engine-attestation.pem");
        Assert.That(File.GetUnixFileMode(keyFile), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        Assert.That(sink.Lines, Has.Some.Contains("dev mode"));
        Assert.That(sink.Lines, Has.Some.Contains("signing attestations with the dev key"));
    }

    [Test]
    public void Attestation_and_ledger_settings_are_validated_with_file_and_line()
    {
        using var dir = new TempDir("engine-cfg-");
        var path = Config(dir, "Host=x;Username=y", """
              migrationConnectionString: "Host=x;Username=o;Password=secret"
            attestation:
              signingKeyFile: missing.pem
              verificationKeys: [gone.pem]
            ledger:
              origin: "has spaces"
            """);
        var e = Assert.Throws<ConfigurationException>(() => EngineSettingsLoader.Load(path))!;
        Assert.That(e.Message, Does.Contain("the connection string must not contain a password"));
        Assert.That(e.Message, Does.Contain("missing.pem").And.Contain("does not exist"));
        Assert.That(e.Message, Does.Contain("gone.pem"));
        Assert.That(e.Message, Does.Contain("the log origin must be one word without spaces"));
    }
}
