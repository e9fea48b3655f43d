using System.Diagnostics;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Stages;

namespace Pipeline.Engine.Observability;

/// <summary>
/// Measures a stage for <see cref="EngineMetrics"/> without changing what it does: its duration and outcome, and the
/// delivery's verdict when this stage decides it (a failure: rejected for a finding, pending for an outage of our own
/// infrastructure, interrupted when the engine stops; the last stage passing: accepted).
/// </summary>
public sealed class MeteredStage(IStage inner, bool isLast) : IStage
{
    public string Name => inner.Name;

    /// <summary>Wraps every stage; the last one decides acceptance.</summary>
    public static IReadOnlyList<IStage> Wrap(IReadOnlyList<IStage> stages) =>
        stages.Select((s, i) => (IStage)new MeteredStage(s, i == stages.Count - 1)).ToList();

    public async Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        var pipeline = context.Definition.Name;
        var tenant = EngineMetrics.TenantOf(context.Settings.Tenants, pipeline);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var outcome = await inner.ExecuteAsync(context, ct).ConfigureAwait(false);
            EngineMetrics.StageFinished(tenant, pipeline, Name, "passed", Stopwatch.GetElapsedTime(started));
            if (isLast) EngineMetrics.DeliveryDecided(tenant, pipeline, "accepted", Name);
            return outcome;
        }
        catch (Exception e)
        {
            EngineMetrics.StageFinished(tenant, pipeline, Name, "failed", Stopwatch.GetElapsedTime(started));
            var verdict = e is OperationCanceledException && ct.IsCancellationRequested ? "interrupted"
                : FailureClass.Classify(e) == FailureKind.Infrastructure ? "pending" : "rejected";
            EngineMetrics.DeliveryDecided(tenant, pipeline, verdict, Name);
            throw;
        }
    }
}
