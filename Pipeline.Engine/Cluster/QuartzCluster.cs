using System.Data.Common;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Engine.Definitions;
using Quartz;

namespace Pipeline.Engine.Cluster;

/// <summary>
/// Quartz's ADO.NET job store in clustered mode on the ledger's PostgreSQL database (schema
/// <c>quartz</c>, <see cref="QuartzSchema"/>): every daemon of a cluster stores the same jobs (one
/// per pipeline) and cron triggers; whichever node acquires a trigger runs the pass, Quartz never
/// runs two passes of one pipeline at once anywhere in the cluster, and the passes a dead node was
/// running are fired again on another node (the jobs request recovery). A pass stopped by a
/// shutdown is handed back the same way (<c>RecoverFiringsCancelledByShutdown</c>).
/// </summary>
public static class QuartzCluster
{
    public const string JobGroup = "pipelines";
    public const string PipelineKey = "pipeline";

    public static JobKey JobKeyFor(string pipeline) => new(pipeline, JobGroup);

    public static TriggerKey ScheduleKeyFor(string pipeline) => new(pipeline + "-schedule", JobGroup);

    /// <summary>Registers the clustered scheduler (not started: the daemon adds the hosted service) on <paramref name="dataSource"/>.</summary>
    public static void AddClusteredQuartz(IServiceCollection services, ClusterSettings cluster, DbDataSource dataSource)
    {
        services.AddSingleton(dataSource);
        services.AddQuartz(q =>
        {
            q.ConfigureScheduler(o =>
            {
                o.InstanceName = cluster.Name;
                if (cluster.NodeId is { } node) o.InstanceId = node;
                // Triggers written by other nodes and clients wake no one here: look this often.
                o.IdleWaitTime = cluster.CheckinInterval;
                // SIGTERM: running passes are asked to stop and waited for; a pass that stops by
                // throwing OperationCanceledException is handed back as a recovery trigger (below).
                o.ShutdownJobInterruption = ShutdownJobInterruption.WhenWaitingForJobs;
            });
            q.UseDefaultThreadPool(cluster.Threads);
            q.UsePersistentStore(s =>
            {
                s.UsePostgres(ds => ds.UseRegisteredDataSource = true);
                s.UseClustering(c =>
                {
                    c.CheckinInterval = cluster.CheckinInterval;
                    c.CheckinMisfireThreshold = cluster.CheckinMisfireThreshold;
                });
                s.ConfigureStore(o =>
                {
                    o.TablePrefix = QuartzSchema.TablePrefix;
                    o.MisfireThreshold = cluster.MisfireThreshold;
                    // Our migrations create the schema (owner role); Quartz only checks it.
                    o.SchemaProvisioning = SchemaProvisioning.Validate;
                    o.StoreJobDataAsStrings = true;
                    o.AcquireTriggersWithinLock = true;
                    // A pass interrupted by a shutdown is stored as a recovery trigger, in the same
                    // transaction, exactly as cluster recovery does after a crash: another node runs it.
                    o.RecoverFiringsCancelledByShutdown = true;
                });
            });
        });
    }

    /// <summary>
    /// Stores this node's view of the schedules: one durable, recoverable job per pipeline and a
    /// cron trigger for each scheduled one. A trigger whose cron expression is unchanged is left
    /// alone (so nodes starting one after the other do not reset each other's next fire time); a
    /// changed one is replaced; a removed schedule is unscheduled. Jobs of pipelines this node does
    /// not know are left for the nodes that do (a rolling update).
    /// </summary>
    public static async Task StoreSchedulesAsync(IScheduler scheduler, IReadOnlyList<PipelineDefinition> pipelines, CancellationToken ct)
    {
        foreach (var p in pipelines)
        {
            var job = JobBuilder.Create<Hosting.PipelineJob>()
                .WithIdentity(JobKeyFor(p.Name))
                .UsingJobData(PipelineKey, p.Name)
                .StoreDurably()
                .RequestRecovery()
                .Build();
            await scheduler.AddJob(job, AddJobOptions.Replacing, ct).ConfigureAwait(false);

            var key = ScheduleKeyFor(p.Name);
            var existing = await scheduler.GetTrigger(key, ct).ConfigureAwait(false) as ICronTrigger;
            if (p.Schedule is null)
            {
                if (existing is not null) await scheduler.UnscheduleJob(key, ct).ConfigureAwait(false);
                continue;
            }

            if (existing?.CronExpressionString == p.Schedule) continue;
            var trigger = TriggerBuilder.Create()
                .WithIdentity(key)
                .ForJob(JobKeyFor(p.Name))
                .WithCronSchedule(p.Schedule, c => c.WithMisfireInstruction(CronTriggerMisfireInstruction.FireAndProceed))
                .Build();
            if (existing is null)
                // Keep: another node starting at the same moment stores it once (the same configuration).
                await scheduler.ScheduleTrigger(trigger, TriggerConflict.Keep, ct).ConfigureAwait(false);
            else
            {
                await scheduler.RescheduleJob(key, trigger, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Asks the cluster for a pass of <paramref name="pipeline"/> now: a one-shot trigger in the
    /// shared store, fired by exactly one node (after the pass running now, if one runs).
    /// </summary>
    public static async Task<TriggerKey> RunNowAsync(IScheduler scheduler, string pipeline, string reason, CancellationToken ct)
    {
        var key = new TriggerKey($"{pipeline}-now-{Guid.NewGuid():N}", JobGroup);
        var trigger = TriggerBuilder.Create()
            .WithIdentity(key)
            .ForJob(JobKeyFor(pipeline))
            .WithDescription(reason)
            .StartNow()
            .WithSimpleSchedule(s => s.WithMisfireInstruction(SimpleTriggerMisfireInstruction.FireNow))
            .Build();
        await scheduler.ScheduleJob(trigger, new ScheduleJobOptions(), ct).ConfigureAwait(false);
        return key;
    }
}

/// <summary>
/// Asks a running cluster for work from outside a daemon (the CLI's <c>pipeline trigger</c>, the
/// portal): a client scheduler on the same job store that is never started, so it only writes
/// triggers; one of the daemons fires each.
/// </summary>
public static class ClusterClient
{
    // Client schedulers share Quartz's process-wide repository by cluster name: one at a time.
    private static readonly SemaphoreSlim OneClient = new(1, 1);

    /// <summary>
    /// As <see cref="RunNowAsync"/>, but null instead of <c>CLUSTER-NO-JOB</c>: the portal runs the
    /// pass itself when no daemon of the cluster has stored the pipeline's job.
    /// </summary>
    public static async Task<TriggerKey?> TryRunNowAsync(Hosting.PipelineEngine engine, string pipeline, string requestedBy, CancellationToken ct)
    {
        try
        {
            return await RunNowAsync(engine, pipeline, requestedBy, ct).ConfigureAwait(false);
        }
        catch (PipelineException e) when (e.Code == "CLUSTER-NO-JOB")
        {
            return null;
        }
    }

    /// <summary>
    /// A pass of <paramref name="pipeline"/> on one node of the cluster, as soon as one is free
    /// (after the pass running now, if one runs). Throws <c>CLUSTER-NO-JOB</c> when no daemon of
    /// the cluster has stored the pipeline's job yet.
    /// </summary>
    public static async Task<TriggerKey> RunNowAsync(Hosting.PipelineEngine engine, string pipeline, string requestedBy, CancellationToken ct)
    {
        engine.Pipeline(pipeline);
        await OneClient.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await WriteTriggerAsync(engine, pipeline, requestedBy, ct).ConfigureAwait(false);
        }
        finally
        {
            OneClient.Release();
        }
    }

    private static async Task<TriggerKey> WriteTriggerAsync(Hosting.PipelineEngine engine, string pipeline, string requestedBy, CancellationToken ct)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        QuartzCluster.AddClusteredQuartz(services, engine.Settings.Cluster, engine.Ledger.DataSource);
        await using var provider = services.BuildServiceProvider();
        var scheduler = await provider.GetRequiredService<ISchedulerFactory>().GetScheduler(ct).ConfigureAwait(false);
        try
        {
            if (!await scheduler.Exists(QuartzCluster.JobKeyFor(pipeline), ct).ConfigureAwait(false))
                throw new PipelineException("CLUSTER-NO-JOB",
                    $"no daemon of cluster '{engine.Settings.Cluster.Name}' has stored a job for pipeline '{pipeline}' yet; start 'pipeline daemon' (with the same cluster.name) first, or use 'pipeline run'");
            return await QuartzCluster.RunNowAsync(scheduler, pipeline, "run now, requested by " + requestedBy, ct).ConfigureAwait(false);
        }
        finally
        {
            await scheduler.Shutdown(false, CancellationToken.None).ConfigureAwait(false);
        }
    }
}
