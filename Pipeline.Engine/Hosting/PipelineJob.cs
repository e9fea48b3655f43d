using Pipeline.Engine.Cluster;
using Pipeline.Engine.Ledger;
using Quartz;

namespace Pipeline.Engine.Hosting;

/// <summary>
/// One pass of one pipeline on whichever node of the cluster fired its trigger (schedule, on-demand
/// run, hand-back or takeover). Quartz never runs two of the same pipeline at once in the cluster,
/// and the pipeline's advisory lock guards against the CLI and the portal. A pass fired as the
/// recovery of a dead node's pass waits (bounded) for that node's database session to release
/// the lock, then recovers its delivery.
/// </summary>
[DisallowConcurrentExecution]
public sealed class PipelineJob(PipelineEngine engine) : IJob
{
    public const string PipelineKey = QuartzCluster.PipelineKey;

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(PipelineKey)!;
        if (engine.Pipelines.All(p => p.Name != name))
        {
            engine.Log.Warning("Pass of {Pipeline} skipped: this node has no such pipeline definition (nodes of one cluster need the same definitions)", name);
            return;
        }

        // Only Quartz's token cancels a pass: a shutdown must reach it through Quartz, which then hands it back.
        if (context.Recovering)
            engine.Log.Warning("Taking over the pass of {Pipeline} from a node that stopped while running it", name);
        try
        {
            var report = await RunAsync(name, context.Recovering, cancellationToken).ConfigureAwait(false);
            foreach (var d in report.Deliveries)
                engine.Log.Information("Delivery {DeliveryId} {Tag}: {Status} {Code}", d.DeliveryId, d.Tag, d.Status, d.ReasonCode);
            // Approved promotions that did not complete (crash, registry outage) finish now, once each.
            await engine.Lifecycle.ResumeAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Rethrown: Quartz stores the pass as a recovery trigger, so another node continues it.
            engine.Log.Information("Run of {Pipeline} stopped for shutdown; handed back to the cluster", name);
            throw;
        }
        catch (PipelineException e) when (e.Code == "RUN-BUSY")
        {
            // The CLI or the portal runs this pipeline now: not an error.
            engine.Log.Information("Pass of {Pipeline} skipped: another engine is running it", name);
        }
        catch (PipelineLockLostException e)
        {
            engine.Log.Warning("Run of {Pipeline} stopped: {Code} {Reason}", name, e.Code, e.Message);
        }
        catch (Exception e)
        {
            var (code, message) = Runs.ErrorCodes.Describe(e);
            engine.Log.Error("Run of {Pipeline} failed: {Code} {Reason}", name, code, message);
        }
    }

    /// <summary>
    /// A takeover may find the dead node's session still holding the lock for a moment (PostgreSQL
    /// ends it when it notices the closed socket): it tries again until the check-in threshold has passed.
    /// </summary>
    private async Task<Runs.RunReport> RunAsync(string name, bool recovering, CancellationToken ct)
    {
        var deadline = engine.Time.GetUtcNow() + engine.Settings.Cluster.CheckinMisfireThreshold;
        while (true)
        {
            try
            {
                return await engine.Runner.RunOnceAsync(engine.Pipeline(name), ct).ConfigureAwait(false);
            }
            catch (PipelineException e) when (e.Code == "RUN-BUSY" && recovering && engine.Time.GetUtcNow() < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), engine.Time, ct).ConfigureAwait(false);
            }
        }
    }
}
