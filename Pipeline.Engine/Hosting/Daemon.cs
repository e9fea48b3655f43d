using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Quartz;
using Serilog;

namespace Pipeline.Engine.Hosting;

/// <summary>
/// <c>pipeline daemon</c>: the generic host with Quartz, one cron-scheduled job per pipeline that has
/// a schedule. SIGTERM, SIGINT and SIGHUP stop it cleanly: running passes are cancelled at once, the
/// delivery each was working on is recorded as pending (the next pass retries it), and the daemon
/// exits 0 after logging that it stopped. SIGHUP does not reload the configuration (restart the
/// daemon for that); it is logged and treated as a clean stop.
/// </summary>
public static class Daemon
{
    /// <summary>How long the host waits for cancelled passes to record their deliveries before it gives up on them.</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(PipelineEngine engine, CancellationToken ct)
    {
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSerilog(engine.Log, dispose: false);
        builder.Services.AddSingleton(engine);
        builder.Services.AddSingleton(new DaemonStopping(stopping.Token));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = ShutdownTimeout);
        builder.Services.AddQuartz(q =>
        {
            foreach (var p in engine.Pipelines.Where(p => p.Schedule is not null))
            {
                var key = new JobKey(p.Name, "pipelines");
                q.AddJob<PipelineJob>(j => j.WithIdentity(key).UsingJobData(PipelineJob.PipelineKey, p.Name).StoreDurably());
                q.AddTrigger(t => t.ForJob(key).WithIdentity(p.Name + "-schedule", "pipelines").WithCronSchedule(p.Schedule!));
            }
        });
        builder.Services.AddQuartzHostedService(o => o.WaitForJobsToComplete = true);
        builder.Services.AddSystemd(); // Type=notify: READY=1 once started, STOPPING=1 on stop (no-op outside systemd)

        using var host = builder.Build();
        using var reload = ConfigWatcher.Start(engine); // pipeline definitions and people: validated whole, applied or refused whole
        await using var operations = await Observability.OperationsServer.StartIfConfiguredAsync(engine, Observability.DaemonProbes.SchedulerRunning(host.Services), ct).ConfigureAwait(false);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        // Running passes learn of the stop at once (Quartz would only wait for them).
        using var onStopping = lifetime.ApplicationStopping.Register(() => { try { stopping.Cancel(); } catch (ObjectDisposedException) { } });
        using var onTokenStop = stopping.Token.Register(lifetime.StopApplication);
        using var hangup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            engine.Log.Information("SIGHUP received: stopping cleanly (the daemon does not reload its configuration; start it again to apply changes)");
            lifetime.StopApplication();
        });
        engine.Log.Information("Daemon started with {Count} scheduled pipelines: {Pipelines}",
            engine.Pipelines.Count(p => p.Schedule is not null), engine.Pipelines.Where(p => p.Schedule is not null).Select(p => $"{p.Name} ({p.Schedule})"));
        await host.RunAsync(CancellationToken.None).ConfigureAwait(false);
        engine.Log.Information("Daemon stopped");
        return 0;
    }
}

/// <summary>Cancelled when the daemon is asked to stop; every running pass is cancelled by it.</summary>
public sealed record DaemonStopping(CancellationToken Token);
