using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Quartz;
using Serilog;

namespace Pipeline.Engine.Hosting;

/// <summary>
/// <c>pipeline daemon</c>: the generic host with Quartz, one cron-scheduled job per pipeline that has
/// a schedule. On SIGTERM/Ctrl-C running passes get the cancellation and the host waits for them.
/// </summary>
public static class Daemon
{
    public static async Task<int> RunAsync(PipelineEngine engine, CancellationToken ct)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Services.AddSerilog(engine.Log, dispose: false);
        builder.Services.AddSingleton(engine);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMinutes(2));
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

        using var host = builder.Build();
        engine.Log.Information("Daemon started with {Count} scheduled pipelines: {Pipelines}",
            engine.Pipelines.Count(p => p.Schedule is not null), engine.Pipelines.Where(p => p.Schedule is not null).Select(p => $"{p.Name} ({p.Schedule})"));
        await host.RunAsync(ct).ConfigureAwait(false);
        engine.Log.Information("Daemon stopped");
        return 0;
    }
}
