using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Api;

/// <summary>
/// A running audit API for an engine: its own database connections over a ledger store that has no
/// signing key (so nothing the API does can write a checkpoint or an entry), the engine's trusted
/// keys, and the token file from <c>audit.apiTokensFile</c>.
/// </summary>
public sealed class AuditApiServer : IAsyncDisposable
{
    /// <summary>The API's database sessions carry this application_name (pg_stat_activity).</summary>
    public const string ApplicationName = "pipeline-audit-api";

    private readonly WebApplication _app;
    private readonly NpgsqlDataSource _dataSource;

    private AuditApiServer(WebApplication app, NpgsqlDataSource dataSource)
    {
        _app = app;
        _dataSource = dataSource;
    }

    /// <summary>The bound addresses (with the real port when 0 was asked for).</summary>
    public IReadOnlyList<string> Addresses =>
        _app.Services.GetService(typeof(IServer)) is IServer s && s.Features.Get<IServerAddressesFeature>() is { } f ? f.Addresses.ToList() : [];

    /// <summary>The API beside a running engine (tests, embedding); it reads through its own read-only pool.</summary>
    /// <exception cref="PipelineException">API-NO-TOKENS, API-TOKENS-FILE, API-REMOTE-BIND, API-BAD-URL.</exception>
    public static Task<AuditApiServer> StartAsync(PipelineEngine engine, string urls, bool allowRemote, CancellationToken ct) =>
        StartAsync(engine.Settings, engine.Keys, engine.Time, engine.Log, urls, allowRemote, ct);

    /// <summary>
    /// <c>pipeline audit serve</c>: the API on an <see cref="AuditSession"/>: nothing migrated, read-only
    /// transactions, public keys only, no clamd or registry settings.
    /// </summary>
    /// <exception cref="PipelineException">API-NO-TOKENS, API-TOKENS-FILE, API-REMOTE-BIND, API-BAD-URL.</exception>
    public static Task<AuditApiServer> StartAsync(AuditSession session, string urls, bool allowRemote, CancellationToken ct) =>
        StartAsync(session.Settings, session.Keys, session.Time, session.Log, urls, allowRemote, ct);

    private static async Task<AuditApiServer> StartAsync(EngineSettings settings, KeyRing keys, TimeProvider time, Serilog.ILogger log, string urls, bool allowRemote, CancellationToken ct)
    {
        var bind = AuditApiHost.CheckBind(urls, allowRemote);
        var tokens = LoadTokens(settings);
        var limits = ApiLimits.Default;
        var dataSource = CreateDataSource(settings, limits);
        var audit = new AuditService(new LedgerStore(dataSource, time), keys, settings.Ledger.Origin);
        var app = AuditApiHost.Build(audit, tokens, bind, log, limits);
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var server = new AuditApiServer(app, dataSource);
        log.Information("Audit API listening on {Urls} ({Count} auditor tokens{Remote})", string.Join(" ", server.Addresses), tokens.Count,
            allowRemote ? ", remote binds allowed" : "");
        return server;
    }

    /// <summary>The auditor token hashes named by <c>audit.apiTokensFile</c>.</summary>
    /// <exception cref="PipelineException">API-NO-TOKENS, API-TOKENS-FILE.</exception>
    internal static AuditApiTokens LoadTokens(PipelineEngine engine) => LoadTokens(engine.Settings);

    /// <exception cref="PipelineException">API-NO-TOKENS, API-TOKENS-FILE, API-TOKEN-SCOPE, API-TOKEN-TENANT-UNKNOWN.</exception>
    internal static AuditApiTokens LoadTokens(EngineSettings settings) =>
        AuditApiTokens.Load(settings.Audit.ApiTokensFile
                            ?? throw new PipelineException("API-NO-TOKENS", "no auditor tokens configured: add 'audit: { apiTokensFile: FILE }' to engine.yaml, FILE listing the SHA-256 of each auditor token"),
            settings.Tenants);

    /// <summary>The API's own small read-only pool: requests to it never take the connections the engine needs, and never write.</summary>
    internal static NpgsqlDataSource CreateDataSource(PipelineEngine engine, ApiLimits limits) => CreateDataSource(engine.Settings, limits);

    private static NpgsqlDataSource CreateDataSource(EngineSettings settings, ApiLimits limits) =>
        AuditSession.CreateReadOnlyDataSource(settings.Database, b =>
        {
            b.MaxPoolSize = limits.MaxPoolSize;
            b.ApplicationName = ApplicationName;
        });

    /// <summary>The route patterns the server maps (tests prove each one is scoped by tenant).</summary>
    internal IReadOnlyList<string> Routes =>
        ((Microsoft.AspNetCore.Routing.IEndpointRouteBuilder)_app).DataSources.SelectMany(d => d.Endpoints)
        .OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>().Select(e => e.RoutePattern.RawText ?? "").Distinct().ToList();

    public Task WaitForShutdownAsync(CancellationToken ct) => _app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
