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
        Ledger = new LedgerStore(dataSource, time);
        Runner = new DeliveryRunner(settings, Ledger, StagesFor, time, log);
    }

    public EngineSettings Settings { get; }
    public IReadOnlyList<PipelineDefinition> Pipelines { get; }
    public LedgerStore Ledger { get; }
    public DeliveryRunner Runner { get; }
    public TimeProvider Time { get; }
    public ILogger Log { get; }

    /// <summary>
    /// Loads and checks the configuration (every error at once, <see cref="ConfigurationException"/>)
    /// and brings the database schema up to date.
    /// </summary>
    public static async Task<PipelineEngine> StartAsync(string configPath, TimeProvider time, ILogger log, CancellationToken ct)
    {
        var settings = EngineSettingsLoader.Load(configPath);
        var pipelines = PipelineDefinitionLoader.LoadFolder(settings.PipelinesDir, checkEnvironment: true);
        var dataSource = LedgerStore.CreateDataSource(settings.Database.ConnectionString, settings.Database.PasswordFile);
        var engine = new PipelineEngine(settings, pipelines, dataSource, time, log);
        try
        {
            await engine.Ledger.MigrateAsync(ct).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            await engine.DisposeAsync().ConfigureAwait(false);
            throw new PipelineException("DB-UNREACHABLE", $"cannot reach the ledger database: {e.Message}", e);
        }

        return engine;
    }

    public PipelineDefinition Pipeline(string name) =>
        Pipelines.FirstOrDefault(p => p.Name == name)
        ?? throw new PipelineException("RUN-UNKNOWN-PIPELINE", $"no pipeline named '{name}' in {Settings.PipelinesDir}; known: {string.Join(", ", Pipelines.Select(p => p.Name))}");

    private IReadOnlyList<IStage> StagesFor(PipelineDefinition definition) =>
    [
        new FetchStage(ExportLimits.Default),
        new VerifyStage(),
        new ScanStage(),
        new PublishStage(),
        new BuildStage(),
        new PushStage(),
    ];

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
