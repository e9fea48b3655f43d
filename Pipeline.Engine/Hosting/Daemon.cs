using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Engine.Cluster;
using Quartz;
using Serilog;

namespace Pipeline.Engine.Hosting;

/// <summary>
/// <c>pipeline daemon</c>: the generic host with a Quartz scheduler that is one node of a cluster
/// (<see cref="QuartzCluster"/>: the ADO.NET job store on the ledger's database), one job per
/// pipeline, cron-triggered where the pipeline has a schedule. SIGTERM, SIGINT and SIGHUP stop it
/// cleanly: the passes running on this node are cancelled at once, the delivery each was working on
/// is recorded as pending (ENG-CANCELLED), and each pass is handed back to the cluster, where another
/// node (or this one, started again) continues it; the daemon exits 0 after logging that it stopped.
/// SIGHUP does not reload the configuration (restart the daemon for that); it is a clean stop.
/// </summary>
public static class Daemon
{
    /// <summary>How long the host waits for cancelled passes to record their deliveries before it gives up on them.</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(PipelineEngine engine, CancellationToken ct)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var cluster = engine.Settings.Cluster;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSerilog(engine.Log, dispose: false);
        builder.Services.AddSingleton(engine);
        builder.Services.AddSingleton(new DaemonStopping(stopping.Token));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        QuartzCluster.AddClusteredQuartz(builder.Services, cluster, engine.Ledger.DataSource);
        builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        builder.Services.AddSystemd(); // Type=notify: READY=1 once started, STOPPING=1 on stop (no-op outside systemd)

        using var host = builder.Build();
        var scheduler = await host.Services.GetRequiredService<ISchedulerFactory>().GetScheduler(ct).ConfigureAwait(false);
        await QuartzCluster.StoreSchedulesAsync(scheduler, engine.Pipelines, ct).ConfigureAwait(false);

        using var reload = ConfigWatcher.Start(engine); // pipeline definitions and people: validated whole, applied or refused whole
        await using var operations = await Observability.OperationsServer.StartIfConfiguredAsync(engine, Observability.DaemonProbes.SchedulerRunning(host.Services), ct).ConfigureAwait(false);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        // A stop does not cancel passes itself: Quartz's shutdown asks them to stop, and hands each
        // one that stops back to the cluster as a recovery trigger (QuartzCluster).
        using var onTokenStop = stopping.Token.Register(lifetime.StopApplication);
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            engine.Log.Information("SIGHUP received: stopping cleanly (the daemon does not reload its configuration; start it again to apply changes)");
            lifetime.StopApplication();
        });
        engine.Log.Information("Daemon started with {Count} scheduled pipelines: {Pipelines}; node {Node} of cluster {Cluster} (takeover bound {Bound})",
            engine.Pipelines.Count(p => p.Schedule is not null), engine.Pipelines.Where(p => p.Schedule is not null).Select(p => $"{p.Name} ({p.Schedule})"),
            await scheduler.GetSchedulerInstanceId(ct).ConfigureAwait(false), cluster.Name, cluster.TakeoverBound);
        try
        {
            await host.RunAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            // Stopped while starting (a signal right at start): the scheduler's start was cancelled, nothing ran.
        }

        engine.Log.Information("Daemon stopped");
        return 0;
    }
}

/// <summary>Cancelled when the daemon's caller cancels (the CLI's own cancellation); every running pass is cancelled by it.</summary>
public sealed record DaemonStopping(CancellationToken Token);
