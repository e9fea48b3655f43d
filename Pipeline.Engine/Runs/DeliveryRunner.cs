using System.Text.Json;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Serilog;

namespace Pipeline.Engine.Runs;

/// <summary>
/// One pass over a pipeline: fetch the supplier's tags, and take every new release tag through
/// the intake steps in order (<see cref="IntakeSteps"/>: each step's typed output is the next one's
/// input); the delivery's intake state in PostgreSQL follows them (<see cref="IntakeStateMachine"/>).
/// Every step, pass or fail, is recorded in the ledger with its own attestation. A finding about the
/// delivery rejects it: it stops at the failing stage, pushes nothing further, and its files go
/// to quarantine. An outage of our own infrastructure (<see cref="FailureClass"/>) leaves it
/// pending instead, retried by a later pass after a backoff (or at once after <c>pipeline retry</c>);
/// later tags of the pipeline wait behind it so that versions are still accepted in order.
/// </summary>
public sealed partial class DeliveryRunner(
    EngineSettings settings,
    LedgerStore ledger,
    Func<PipelineDefinition, IntakeSteps> stepsFor,
    TimeProvider time,
    ILogger log)
{
    /// <summary>When a pending delivery is retried.</summary>
    public RetryBackoff Backoff { get; set; } = RetryBackoff.Default;

    /// <summary>The lifecycle's acceptance hook (tracks the delivery, supersedes older ones, runs an automatic first stage).</summary>
    public Func<PipelineDefinition, DeliveryReport, CancellationToken, Task>? OnAccepted { get; set; }

    public async Task<RunReport> RunOnceAsync(PipelineDefinition definition, CancellationToken ct)
    {
        var log1 = log.ForContext("Pipeline", definition.Name);
        await using var pipelineLock = await ledger.TryLockPipelineAsync(definition.Name, ct).ConfigureAwait(false)
            ?? throw new PipelineException("RUN-BUSY", $"pipeline '{definition.Name}' is already running (in this or another engine process); try again when it has finished");

        Directory.CreateDirectory(settings.WorkDir);
        var mirrorDir = Path.Combine(settings.WorkDir, "mirrors", definition.Name + ".git");
        // Holding the lock, every delivery of this pipeline still marked running was cut off (killed, crashed, lost its lock):
        // those with every stage recorded are resumed (accepted), the others become retries.
        var resumed = await ResumePushedAsync(definition, pipelineLock, log1, ct).ConfigureAwait(false);
        await new StaleDeliveries(settings, ledger, time).RecoverAsync(definition.Name, pipelineLock, mirrorDir, log1, ct).ConfigureAwait(false);
        using var mirror = SupplierMirror.Open(mirrorDir, definition.Source.Url);
        log1.Information("Fetching tags of {Pipeline} from {Source}", definition.Name, SupplierMirror.Redact(definition.Source.Url.ToString()));
        mirror.Fetch(GitCredentials.FromFile(definition.Source.CredentialsFile), ct);

        var deliveries = new List<DeliveryReport>(resumed);
        var skipped = new List<string>();
        var waiting = new List<string>();
        string? heldBehind = null;
        // Read once per pass; kept current as this pass accepts deliveries (rollback protection).
        var lastAccepted = await ledger.LastAcceptedTagAsync(definition.Name, ct).ConfigureAwait(false);
        foreach (var tag in mirror.ListTags(definition.Source.TagPattern))
        {
            ct.ThrowIfCancellationRequested();
            var seen = await ledger.FindDeliveriesAsync(definition.Name, tag.Name, ct).ConfigureAwait(false);
            if (seen.Any(d => d.TagObjectId == tag.ObjectId && d.Status is DeliveryStatus.Accepted or DeliveryStatus.Rejected))
            {
                skipped.Add(tag.Name);
                continue;
            }

            if (heldBehind is not null)
            {
                waiting.Add(tag.Name);
                continue;
            }

            var pending = seen.LastOrDefault(d => d.TagObjectId == tag.ObjectId && d.Status == DeliveryStatus.Pending);
            if (pending?.NextAttemptAt is { } due && due > time.GetUtcNow())
            {
                log1.Information("Delivery {DeliveryId} of {Tag} is pending ({Code}); attempt {Attempt} is due at {Due}", pending.Id, tag.Name, pending.ReasonCode, pending.Attempt + 1, due);
                waiting.Add(tag.Name);
                heldBehind = tag.Name;
                continue;
            }

            var firstSeen = seen.Count > 0 ? seen[0].TagObjectId : null;
            var attempt = new Attempt((pending?.Attempt ?? 0) + 1, pending?.Id);
            var report = await ProcessAsync(definition, mirror, tag, firstSeen, lastAccepted, attempt, pipelineLock, log1, ct).ConfigureAwait(false);
            deliveries.Add(report);
            if (report.Status == DeliveryStatus.Accepted && (lastAccepted is null || VersionOrder.Compare(tag.Name, lastAccepted) > 0))
                lastAccepted = tag.Name;
            if (report.Status == DeliveryStatus.Pending) heldBehind = tag.Name;
        }

        if (heldBehind is not null && waiting.Count > 0)
            log1.Information("Tags {Tags} wait behind pending {Tag} (versions are accepted in order)", waiting, heldBehind);
        log1.Information("Pipeline {Pipeline}: {New} new deliveries, {Skipped} already processed, {Waiting} waiting", definition.Name, deliveries.Count, skipped.Count, waiting.Count);
        return new RunReport(definition.Name, deliveries, skipped) { Waiting = waiting };
    }

    private sealed record Attempt(int Number, Guid? RetryOf);

    private async Task<DeliveryReport> ProcessAsync(PipelineDefinition definition, SupplierMirror mirror, TagInfo tag, string? firstSeenObjectId, string? lastAccepted,
        Attempt attempt, PipelineLock pipelineLock, ILogger plog, CancellationToken ct)
    {
        var id = Guid.CreateVersion7(time.GetUtcNow());
        var dlog = plog.ForContext("DeliveryId", id).ForContext("Tag", tag.Name);
        var workDir = Path.Combine(settings.WorkDir, "runs", id.ToString("N"));
        Directory.CreateDirectory(workDir);
        await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
        await ledger.StartDeliveryAsync(id, definition.Name, tag.Name, tag.ObjectId, attempt.Number, attempt.RetryOf, ct).ConfigureAwait(false);
        if (attempt.RetryOf is { } previous)
            dlog.Information("Delivery {DeliveryId} of {Pipeline} for tag {Tag} started (attempt {Attempt}, retrying {Previous})", id, definition.Name, tag.Name, attempt.Number, previous);
        else
            dlog.Information("Delivery {DeliveryId} of {Pipeline} for tag {Tag} started", id, definition.Name, tag.Name);

        var context = new DeliveryContext(id, definition, settings, mirror, tag, workDir, time) { LastAcceptedTag = lastAccepted };
        var steps = stepsFor(definition);
        var fetchInput = new FetchInput(tag, firstSeenObjectId);
        var run = new IntakeRun(context, attempt, pipelineLock, dlog);
        run.Enter(steps.Fetch, fetchInput);
        try
        {
            return await RunStepsAsync(run, steps, fetchInput, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && !run.Decided)
        {
            await InterruptAsync(run).ConfigureAwait(false);
            throw;
        }
        finally
        {
            await run.StopAheadAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The intake as a sequence of typed steps: each one's output is the next one's input; a step
    /// that fails ends the delivery (<see cref="IntakeRun.Report"/>: rejected or pending). Work overlaps
    /// the steps before its own: each file goes to clamd as soon as fetch has written it
    /// (<see cref="ScanAhead"/>); the images are built on this machine while the scan runs, and their
    /// blobs uploaded beside the publish once the verdict is final (<see cref="ImageAhead"/>). The
    /// scan, build and push steps take the results, in their order in the ledger.
    /// </summary>
    private async Task<DeliveryReport> RunStepsAsync(IntakeRun run, IntakeSteps steps, FetchInput input, CancellationToken ct)
    {
        var scanAhead = run.Ahead(ScanAhead.Start(run.Context, ct));
        if (await StepAsync(run, steps.Fetch, input with { ScanAhead = scanAhead }, ct).ConfigureAwait(false) is not { } fetched) return run.Report!;
        if (await StepAsync(run, steps.Verify, fetched, ct).ConfigureAwait(false) is not { } verified) return run.Report!;
        var ahead = run.Ahead(ImageAhead.Start(run.Context, verified, ct));
        if (await StepAsync(run, steps.Scan, new ScanInput(verified, scanAhead), ct).ConfigureAwait(false) is not { } scanned) return run.Report!;
        ahead.StartUpload(scanned);
        if (await StepAsync(run, steps.Publish, scanned, ct).ConfigureAwait(false) is not { } published) return run.Report!;
        if (await StepAsync(run, steps.Build, new BuildInput(published, ahead), ct).ConfigureAwait(false) is not { } built) return run.Report!;
        if (await StepAsync(run, steps.Push, new PushInput(built, ahead), ct).ConfigureAwait(false) is not { } pushed) return run.Report!;

        await run.Lock.EnsureHeldAsync(ct).ConfigureAwait(false);
        run.Decided = true;
        return await AcceptAsync(run, pushed).ConfigureAwait(false) with { Attempt = run.Attempt.Number };
    }
}
