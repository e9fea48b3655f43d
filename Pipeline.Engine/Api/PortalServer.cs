using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Notifications;

namespace Pipeline.Engine.Api;

/// <summary>
/// The one host of <c>pipeline portal serve</c>: the auditors' read-only API and page (auditor
/// tokens, a ledger store without a signing key), and the portal for people from the people
/// file (the engine's lifecycle service, which signs and records every action), on-demand passes
/// and, when configured, the webhook notifier.
/// </summary>
public sealed class PortalServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly NpgsqlDataSource _auditSource;
    private readonly WebhookNotifier? _notifier;
    private ConfigWatcher? _reload;

    private PortalServer(WebApplication app, NpgsqlDataSource auditSource, PortalRuns runs, WebhookNotifier? notifier)
    {
        _app = app;
        _auditSource = auditSource;
        Runs = runs;
        _notifier = notifier;
    }

    /// <summary>The on-demand passes started through this server.</summary>
    public PortalRuns Runs { get; }

    /// <summary>The bound addresses (with the real port when 0 was asked for).</summary>
    public IReadOnlyList<string> Addresses =>
        _app.Services.GetService(typeof(IServer)) is IServer s && s.Features.Get<IServerAddressesFeature>() is { } f ? f.Addresses.ToList() : [];

    /// <summary>
    /// Every mapped route of the portal API (under <see cref="PortalEndpoints.Prefix"/>) as
    /// "METHOD pattern", read from the host's <see cref="EndpointDataSource"/>: the tenant-scoping
    /// tests hold each against their table, so a new endpoint cannot go untested.
    /// </summary>
    public IReadOnlyList<string> PortalRoutes =>
        _app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.StartsWith(PortalEndpoints.Prefix + "/", StringComparison.Ordinal) == true)
            .SelectMany(e => (e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? ["*"]).Select(m => $"{m} {e.RoutePattern.RawText}"))
            .Order(StringComparer.Ordinal).ToList();

    /// <exception cref="PipelineException">PORTAL-NO-PEOPLE, API-NO-TOKENS, API-TOKENS-FILE, API-REMOTE-BIND, API-BAD-URL.</exception>
    public static async Task<PortalServer> StartAsync(PipelineEngine engine, string urls, bool allowRemote, CancellationToken ct)
    {
        var bind = AuditApiHost.CheckBind(urls, allowRemote);
        if (engine.Settings.PeopleFile is null)
            throw new PipelineException("PORTAL-NO-PEOPLE", "no people configured: add 'people: { file: FILE }' to engine.yaml (name, roles, pipelines and token hash per person); 'pipeline audit serve' serves auditors alone");
        var tokens = AuditApiServer.LoadTokens(engine);
        var limits = ApiLimits.Default;
        var auditSource = AuditApiServer.CreateDataSource(engine, limits);
        var audit = new AuditService(new LedgerStore(auditSource, engine.Time), engine.Keys, engine.Settings.Ledger.Origin);
        // With a daemon cluster on this database "transfer now" is handed to it (exactly one node runs it).
        var runs = new PortalRuns(engine.Runner.RunOnceAsync,
            async (name, person, c) => (await Cluster.ClusterClient.TryRunNowAsync(engine, name, "portal: " + person, c).ConfigureAwait(false))?.ToString(),
            (name, c) => engine.Lifecycle.ResumeAsync(name, c), engine.Ledger, engine.Time, engine.Log);
        var portal = new Portal(engine.Lifecycle, runs, engine.Ledger, new LivePipelines(() => engine.Pipelines));
        var app = AuditApiHost.Build(audit, tokens, bind, engine.Log, limits, a => PortalEndpoints.Map(a, portal, engine.Log));
        WebhookNotifier? notifier = null;
        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
            notifier = await WebhookNotifier.StartIfConfiguredAsync(engine, ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            await runs.DisposeAsync().ConfigureAwait(false);
            await auditSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var server = new PortalServer(app, auditSource, runs, notifier) { _reload = ConfigWatcher.Start(engine, tokens) };
        engine.Log.Information("Portal listening on {Urls} ({People} people, {Auditors} auditor tokens, {Webhooks} webhooks{Remote})", string.Join(" ", server.Addresses),
            engine.Settings.People.People.Count, tokens.Count, engine.Settings.Notifications.Webhooks.Count, allowRemote ? ", remote binds allowed" : "");
        return server;
    }

    public Task WaitForShutdownAsync(CancellationToken ct) => _app.WaitForShutdownAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _reload?.Dispose();
        await Runs.DisposeAsync().ConfigureAwait(false);
        if (_notifier is not null) await _notifier.DisposeAsync().ConfigureAwait(false);
        await _auditSource.DisposeAsync().ConfigureAwait(false);
    }
}
