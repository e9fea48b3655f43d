using Quartz;

namespace Pipeline.Engine.Hosting;

/// <summary>The scheduled pass of one pipeline; Quartz never runs two of the same pipeline at once.</summary>
[DisallowConcurrentExecution]
public sealed class PipelineJob(PipelineEngine engine) : IJob
{
    public const string PipelineKey = "pipeline";

    public async ValueTask Execute(IJobExecutionContext context, CancellationToken cancellationToken)
    {
        var name = context.MergedJobDataMap.GetString(PipelineKey)!;
        try
        {
            var report = await engine.Runner.RunOnceAsync(engine.Pipeline(name), cancellationToken).ConfigureAwait(false);
            foreach (var d in report.Deliveries)
                engine.Log.Information("Delivery {DeliveryId} {Tag}: {Status} {Code}", d.DeliveryId, d.Tag, d.Status, d.ReasonCode);
            // Approved promotions that did not complete (crash, registry outage) finish now, once each.
            await engine.Lifecycle.ResumeAsync(name, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            engine.Log.Information("Run of {Pipeline} stopped for shutdown", name);
        }
        catch (Exception e)
        {
            var (code, message) = Runs.ErrorCodes.Describe(e);
            engine.Log.Error("Run of {Pipeline} failed: {Code} {Reason}", name, code, message);
        }
    }
}
