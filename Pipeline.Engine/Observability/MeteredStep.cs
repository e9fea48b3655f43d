using System.Diagnostics;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Stages;

namespace Pipeline.Engine.Observability;

/// <summary>
/// Measures a step for <see cref="EngineMetrics"/> without changing what it does: its duration and outcome, and the
/// delivery's verdict when this step decides it (a failure: rejected for a finding, pending for an outage of our own
/// infrastructure, interrupted when the engine stops; the last step passing: accepted). Its attestation is the inner step's.
/// </summary>
public sealed class MeteredStep<TIn, TOut>(IIntakeStep<TIn, TOut> inner, bool isLast) : IIntakeStep<TIn, TOut> where TOut : class
{
    public string Name => inner.Name;

    public async Task<StepResult<TOut>> RunAsync(DeliveryContext context, TIn input, StepEvidence found, CancellationToken ct)
    {
        var pipeline = context.Definition.Name;
        var tenant = EngineMetrics.TenantOf(context.Settings.Tenants, pipeline);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var result = await inner.RunAsync(context, input, found, ct).ConfigureAwait(false);
            EngineMetrics.StageFinished(tenant, pipeline, Name, "passed", Stopwatch.GetElapsedTime(started));
            if (isLast) EngineMetrics.DeliveryDecided(tenant, pipeline, "accepted", Name);
            return result;
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

    public InTotoStatement Attest(DeliveryContext context, TIn input, StepResult<TOut> result, DateTimeOffset finishedOn) => inner.Attest(context, input, result, finishedOn);

    public InTotoStatement AttestFailure(DeliveryContext context, TIn input, StepFailure failure, DateTimeOffset finishedOn) =>
        inner.AttestFailure(context, input, failure, finishedOn);
}

/// <summary>Wraps every intake step for metrics; push, the last, decides acceptance.</summary>
public static class MeteredSteps
{
    public static IntakeSteps Wrap(IntakeSteps s) => new(
        new MeteredStep<FetchInput, Fetched>(s.Fetch, false),
        new MeteredStep<Fetched, Verified>(s.Verify, false),
        new MeteredStep<ScanInput, Scanned>(s.Scan, false),
        new MeteredStep<Scanned, Published>(s.Publish, false),
        new MeteredStep<BuildInput, Built>(s.Build, false),
        new MeteredStep<PushInput, Pushed>(s.Push, true));
}
