using Pipeline.Engine.Ledger;
using Quartz;

namespace Pipeline.Engine.Hosting;

/// <summary>The scheduled pass of one pipeline; Quartz never runs two of the same pipeline at once.</summary>
[DisallowConcurrentExecution]
public sealed class PipelineJob(PipelineEngine engine, DaemonStopping stopping) : IJob
{
    public const string PipelineKey = "pipeline";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(PipelineKey)!;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stopping.Token);
        try
        {
            var report = await engine.Runner.RunOnceAsync(engine.Pipeline(name), cts.Token).ConfigureAwait(false);
            foreach (var d in report.Deliveries)
                engine.Log.Information("Delivery {DeliveryId} {Tag}: {Status} {Code}", d.DeliveryId, d.Tag, d.Status, d.ReasonCode);
            // Approved promotions that did not complete (crash, registry outage) finish now, once each.
            await engine.Lifecycle.ResumeAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            engine.Log.Information("Run of {Pipeline} stopped for shutdown", name);
        }
        catch (PipelineException e) when (e.Code == "RUN-BUSY")
        {
            // Another engine process runs this pipeline now: normal in a cluster, not an error.
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
}
