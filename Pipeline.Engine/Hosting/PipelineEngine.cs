using Npgsql;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Serilog;

namespace Pipeline.Engine.Hosting;

/// <summary>
/// The composed engine: settings and every pipeline definition (all validated before anything
/// starts), the ledger, and the runner with its stages.
/// </summary>
public sealed class PipelineEngine : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;

    private PipelineEngine(EngineSettings settings, IReadOnlyList<PipelineDefinition> pipelines, NpgsqlDataSource dataSource, TimeProvider time, ILogger log)
    {
        Settings = settings;
        Pipelines = pipelines;
        _dataSource = dataSource;
        Time = time;
        Log = log;
        (SigningKey, Keys) = LoadKeys(settings, log);
        Ledger = new LedgerStore(dataSource, time, new LogSigning(SigningKey, settings.Ledger.Origin, settings.Ledger.CheckpointDir));
        Runner = new DeliveryRunner(settings, Ledger, StepsFor, time, log);
        Lifecycle = new Lifecycle.LifecycleService(Ledger, new Lifecycle.LifecycleStore(dataSource), settings.People, pipelines, settings.Stages,
            new Lifecycle.PromotionStep(settings, log), VerifyChainAsync, time, log);
        Lifecycle.Deployment = new Deploy.StageDeployment(settings, pipelines, time, log);
        if (settings.Tenants.Configured) Lifecycle.ApprovalFloors = settings.ApprovalFloors;
        Lifecycle.Tenants = settings.Tenants;
        Runner.OnAccepted = async (definition, report, ct) => await Lifecycle.OnAcceptedAsync(definition, report, ct).ConfigureAwait(false);
    }

    /// <summary>The delivery lifecycle after the push: stages, promotions, Freigaben (CLI and portal call it).</summary>
    public Lifecycle.LifecycleService Lifecycle { get; }

    /// <summary>
    /// A delivery may move only while its whole chain verifies in the log: a fresh checkpoint, then
    /// every statement's signature, inclusion and digest links, and a passed push. Null when it verifies.
    /// </summary>
    private async Task<string?> VerifyChainAsync(Guid deliveryId, CancellationToken ct)
    {
        await Ledger.CheckpointAsync(ct).ConfigureAwait(false);
        var trace = await Audit.TraceAsync(deliveryId.ToString("D"), ct).ConfigureAwait(false);
        var steps = trace.Deliveries.SelectMany(d => d.Steps).ToList();
        if (steps.SelectMany(s => s.Problems).FirstOrDefault() is { } p) return p.ToString();
        if (!trace.Ok) return "the delivery has no verifiable statements in the log";
        return steps.Any(s => s.Record.Stage == "push" && s.Record.Verdict == "passed") ? null : "the log holds no passed push for this delivery";
    }

    public EngineSettings Settings { get; private set; }
    public IReadOnlyList<PipelineDefinition> Pipelines { get; private set; }

    /// <summary>Takes a reloaded configuration into use whole (<see cref="ConfigWatcher"/> validated it): the next pass and every new request see it.</summary>
    public void Apply(ConfigSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        Lifecycle.Reload(snapshot.People, snapshot.Pipelines);
        Settings = Settings with { People = snapshot.People };
        Pipelines = snapshot.Pipelines;
    }
    public LedgerStore Ledger { get; }
    public DeliveryRunner Runner { get; }
    public TimeProvider Time { get; }
    public ILogger Log { get; }

    /// <summary>The engine's attestation and checkpoint signing key.</summary>
    public Attestations.EngineSigningKey SigningKey { get; }

    /// <summary>Keys trusted for verification: the signing key and the configured retired keys.</summary>
    public Attestations.KeyRing Keys { get; }

    /// <summary>The auditor's query functions over this engine's ledger.</summary>
    public Audit.AuditService Audit => new(Ledger, Keys, Settings.Ledger.Origin);

    /// <summary>Loads the signing key, or in dev mode (no <c>attestation</c> section) creates one once in the work folder.</summary>
    internal static (Attestations.EngineSigningKey, Attestations.KeyRing) LoadKeys(EngineSettings settings, ILogger log)
    {
        Attestations.EngineSigningKey key;
        var verification = new List<Attestations.VerificationKey>();
        if (settings.Attestation is { } a)
        {
            key = Attestations.EngineSigningKey.FromPemFile(a.SigningKeyFile);
            verification.AddRange(a.VerificationKeyFiles.Select(Attestations.VerificationKey.FromPemFile));
        }
        else
        {
            var path = Path.Combine(settings.WorkDir, "keys", "engine-attestation.pem");
            if (!File.Exists(path))
            {
                using var generated = Attestations.EngineSigningKey.Generate();
                generated.WritePrivatePem(path);
            }

            key = Attestations.EngineSigningKey.FromPemFile(path);
            log.Warning("No attestation section in the engine configuration: signing attestations with the dev key {KeyFile} (key id {KeyId}); configure attestation.signingKeyFile for production",
                path, key.KeyId);
        }

        return (key, new Attestations.KeyRing(verification.Prepend(key.Public)));
    }

    /// <summary>
    /// Loads and checks the configuration (every error at once, <see cref="ConfigurationException"/>)
    /// and brings the database schema up to date.
    /// </summary>
    public static async Task<PipelineEngine> StartAsync(string configPath, TimeProvider time, ILogger log, CancellationToken ct)
    {
        var settings = EngineSettingsLoader.Load(configPath);
        var pipelines = PipelineDefinitionLoader.LoadFolder(settings.PipelinesDir, checkEnvironment: true);
        Tenancy.TenancyValidator.Validate(settings, pipelines);
        WorkFolder.EnsureWritable(settings);
        var dataSource = LedgerStore.CreateDataSource(settings.Database.ConnectionString, settings.Database.PasswordFile);
        var engine = new PipelineEngine(settings, pipelines, dataSource, time, log);
        try
        {
            await MigrateAsync(settings, dataSource, log, ct).ConfigureAwait(false);
        }
        catch
        {
            await engine.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return engine;
    }

    /// <summary>
    /// Migrates as the owner role when <c>database.migrationConnectionString</c> is set (and grants
    /// the engine role INSERT/SELECT on the ledger), else with the engine's own connection (dev mode).
    /// </summary>
    /// <exception cref="PipelineException">
    /// DB-UNREACHABLE (a connection refused, timed out or not authenticated, naming which one), or
    /// DB-MIGRATION-FAILED (the database answered and refused a step: the step, SQL state and, for a
    /// missing right, which role needs which right), DB-SCHEMA-OLD/NEWER. Never about a delivery.
    /// </exception>
    private static async Task MigrateAsync(EngineSettings settings, NpgsqlDataSource engineSource, ILogger log, CancellationToken ct)
    {
        var engineConnection = settings.Database.ConnectionString;
        if (settings.Database.MigrationConnectionString is not { } owner)
        {
            log.Warning("No database.migrationConnectionString: migrating the ledger schema with the engine's own connection (dev mode; the engine role owns the tables)");
            await Reaching("the engine's connection, migrating in dev mode", engineConnection, () => LedgerSchema.MigrateAsync(engineSource, ct)).ConfigureAwait(false);
            return;
        }

        var engineRole = new NpgsqlConnectionStringBuilder(engineConnection).Username
                         ?? throw new PipelineException("DB-ENGINE-ROLE", "database.connectionString names no Username; the engine role must be explicit when a migration connection is configured");
        await using (var ownerSource = LedgerStore.CreateDataSource(owner, settings.Database.MigrationPasswordFile))
            await Reaching("the migration connection", owner, () => LedgerSchema.MigrateAsync(ownerSource, engineRole, ct)).ConfigureAwait(false);
        log.Information("Ledger schema migrated as the owner role; engine role {Role} may only insert into and read the ledger tables", engineRole);
        await Reaching("the engine's connection", engineConnection, async () =>
        {
            try
            {
                await LedgerSchema.CheckVersionAsync(engineSource, ct).ConfigureAwait(false);
            }
            catch (PostgresException e) when (!DatabaseFailures.IsUnreachable(e))
            {
                throw DatabaseFailures.MigrationFailed("the schema version check after migrating", engineRole, e);
            }
        }).ConfigureAwait(false);
    }

    /// <summary>Runs <paramref name="body"/>; a database it cannot reach is DB-UNREACHABLE naming <paramref name="what"/>.</summary>
    private static async Task Reaching(string what, string connectionString, Func<Task> body)
    {
        try
        {
            await body().ConfigureAwait(false);
        }
        catch (NpgsqlException e) when (DatabaseFailures.IsUnreachable(e))
        {
            throw DatabaseFailures.Unreachable(what, connectionString, e);
        }
        catch (PostgresException e)
        {
            // Not a connection problem and not inside a named step: still the database's refusal, never "unreachable".
            throw DatabaseFailures.MigrationFailed("the migration", new NpgsqlConnectionStringBuilder(connectionString).Username, e);
        }
    }

    public PipelineDefinition Pipeline(string name) =>
        Pipelines.FirstOrDefault(p => p.Name == name)
        ?? throw new PipelineException("RUN-UNKNOWN-PIPELINE", $"no pipeline named '{name}' in {Settings.PipelinesDir}; known: {string.Join(", ", Pipelines.Select(p => p.Name))}");

    /// <summary>The intake steps of a pipeline, each measured for the metrics.</summary>
    private static IntakeSteps StepsFor(PipelineDefinition definition) => Observability.MeteredSteps.Wrap(IntakeSteps.Default(ExportLimits.Default));

    public async ValueTask DisposeAsync()
    {
        SigningKey.Dispose();
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
