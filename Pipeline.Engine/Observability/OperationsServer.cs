using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using Pipeline.Checkup.Scanning;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Hosting;

namespace Pipeline.Engine.Observability;

/// <summary>
/// The operator's port (engine.yaml <c>metrics.listen</c>), an ASP.NET Core host of its own next to the daemon:
/// <c>/metrics</c> in Prometheus text format through OpenTelemetry (the engine's, the clamd pool's and the state
/// gauges), <c>/health/live</c> (the process answers) and <c>/health/ready</c> (200 when the database, clamd, the
/// registry, VCS B and the scheduler all answer; 503 naming every failing one). GET only, no authentication:
/// it names dependencies but no secrets, and binds to loopback unless the operator allows otherwise.
/// </summary>
public sealed class OperationsServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly OperationsGauges _gauges;

    private OperationsServer(WebApplication app, OperationsGauges gauges, HealthChecks health)
    {
        _app = app;
        _gauges = gauges;
        Health = health;
    }

    public HealthChecks Health { get; }

    /// <summary>The bound address, e.g. http://127.0.0.1:9464 (the real port when 0 was configured).</summary>
    public string Address =>
        _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
        ?? throw new InvalidOperationException("the operations server is not started");

    /// <summary>Starts the server when <c>metrics:</c> is configured; null otherwise.</summary>
    public static async Task<OperationsServer?> StartIfConfiguredAsync(PipelineEngine engine, Func<CancellationToken, Task<bool>>? schedulerRunning, CancellationToken ct) =>
        engine.Settings.Metrics is { } m ? await StartAsync(engine, m, schedulerRunning, ct).ConfigureAwait(false) : null;

    public static async Task<OperationsServer> StartAsync(PipelineEngine engine, MetricsSettings metrics, Func<CancellationToken, Task<bool>>? schedulerRunning, CancellationToken ct)
    {
        var health = new HealthChecks(engine.Settings, engine.Ledger.DataSource, schedulerRunning, engine.Time);
        var gauges = new OperationsGauges(engine.Ledger.DataSource, health, engine.Time);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(OperationsServer).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 0;
            k.Listen(metrics.Listen);
        });
        builder.Services.AddOpenTelemetry().WithMetrics(b => b
            .AddMeter(EngineMetrics.MeterName, ClamdMetrics.MeterName, OperationsGauges.MeterName, ConfigWatcher.MeterName)
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        var app = builder.Build();
        app.Use(async (ctx, next) =>
        {
            ctx.Response.Headers.CacheControl = "no-store";
            if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
            {
                ctx.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
                ctx.Response.Headers.Allow = "GET, HEAD";
                return;
            }

            if (ctx.Request.Path.StartsWithSegments("/metrics", StringComparison.Ordinal))
                await gauges.RefreshAsync(ctx.RequestAborted).ConfigureAwait(false);
            await next(ctx).ConfigureAwait(false);
        });
        app.UseOpenTelemetryPrometheusScrapingEndpoint("/metrics");
        app.MapGet("/health/live", () => Results.Json(new { status = "live" }));
        app.MapGet("/health/ready", async (HttpContext ctx) =>
        {
            var report = await health.CheckAsync(ctx.RequestAborted).ConfigureAwait(false);
            return Results.Json(new
            {
                status = report.Ready ? "ready" : "not ready",
                failing = report.Failing,
                checks = report.Checks.Select(c => new { name = c.Name, ok = c.Ok, detail = c.Detail, seconds = Math.Round(c.Seconds, 3) }),
            }, statusCode: report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
        });

        try
        {
            await app.StartAsync(ct).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            gauges.Dispose();
            throw;
        }

        var server = new OperationsServer(app, gauges, health);
        engine.Log.Information("Health and metrics listening on {Address} (/metrics, /health/live, /health/ready)", server.Address);
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _gauges.Dispose();
    }
}
