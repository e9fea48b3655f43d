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

    [Test]
    public async Task A_migration_the_database_refuses_is_DB_MIGRATION_FAILED_naming_the_step_the_state_and_the_missing_right()
    {
        await using var db = await TestDatabase.CreateAsync();
        var engineRole = await db.CreateLoginRoleAsync();
        var weakOwner = await db.CreateLoginRoleAsync(); // may log in, may not create anything in schema public (PostgreSQL 15)
        using var dir = new TempDir("engine-cfg-");
        var path = Config(dir, new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = engineRole }.ConnectionString, $"""
              migrationConnectionString: "{new NpgsqlConnectionStringBuilder(db.ConnectionString) { Username = weakOwner }.ConnectionString}"
            """);
        var e = (await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => PipelineEngine.StartAsync(path, TimeProvider.System, Serilog.Core.Logger.None, default)))!;
        Assert.That(e.Code, Is.EqualTo("DB-MIGRATION-FAILED"), e.Message);
        Assert.That(e.Message, Does.Contain("at the schema_migrations table").And.Contain($"as role '{weakOwner}'").And.Contain("SQL state 42501")
            .And.Contain($"role '{weakOwner}' needs CREATE and USAGE on schema public"));
        Assert.That(e.Message, Does.Not.Contain("supplier").And.Not.Contain("delivery"));

        // A step the database refuses for another reason: the step and its state, not "unreachable".
        await using (var owner = db.DataSource())
        await using (var clash = owner.CreateCommand("create table deliveries (x int)"))
            await clash.ExecuteNonQueryAsync();
        var dev = Config(dir, db.ConnectionString, "");
        e = (await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => PipelineEngine.StartAsync(dev, TimeProvider.System, Serilog.Core.Logger.None, default)))!;
        Assert.That(e.Code, Is.EqualTo("DB-MIGRATION-FAILED"), e.Message);
        Assert.That(e.Message, Does.Contain($"at step 1 of {Pipeline.Engine.Ledger.LedgerSchema.LatestVersion}").And.Contain("SQL state 42P07").And.Contain("\"deliveries\" already exists"));
        Assert.That((await PipelineCli(dev)).Err, Does.StartWith("DB-MIGRATION-FAILED: the ledger schema migration failed at step 1"));
    }

    [Test]
    public async Task A_database_that_cannot_be_reached_is_DB_UNREACHABLE_naming_the_connection()
    {
        await using var db = await TestDatabase.CreateAsync();
        using var dir = new TempDir("engine-cfg-");
        // Refused: nothing listens on port 1.
        var path = Config(dir, db.ConnectionString, """
              migrationConnectionString: "Host=127.0.0.1;Port=1;Username=owner;Database=ledger;Timeout=2"
            """);
        var e = (await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => PipelineEngine.StartAsync(path, TimeProvider.System, Serilog.Core.Logger.None, default)))!;
        Assert.That(e.Code, Is.EqualTo("DB-UNREACHABLE"), e.Message);
        Assert.That(e.Message, Does.StartWith("cannot reach the ledger database (the migration connection: role 'owner' at 127.0.0.1:1/ledger)"));

        // The server answers but refuses the session (no such database): still unreachable, not a migration failure.
        var missing = new NpgsqlConnectionStringBuilder(db.ConnectionString) { Database = "no_such_ledger_db" }.ConnectionString;
        var (rc, err) = await PipelineCli(Config(dir, missing, ""));
        Assert.That(rc, Is.EqualTo(Pipeline.Engine.Cli.PipelineCli.Failure));
        Assert.That(err, Does.StartWith("DB-UNREACHABLE: cannot reach the ledger database (the engine's connection, migrating in dev mode").And.Contain("SQL state 3D000"));
    }

    private static async Task<(int Rc, string Err)> PipelineCli(string config)
    {
        var err = new StringWriter();
        var rc = await Pipeline.Engine.Cli.PipelineCli.RunAsync(["audit", "checkpoint", "--config", config], new StringWriter(), err);
        return (rc, err.ToString());
    }
}
