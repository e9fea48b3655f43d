using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Stages;
using Serilog;

namespace Pipeline.Engine.Runs;

public sealed partial class DeliveryRunner
{
    /// <summary>
    /// The runner's own bookkeeping of one delivery (never seen by a step): its entries so far, the
    /// intake state it last recorded, the step running (with what that step would attest should a
    /// shutdown cut it off) and, once a step failed, the delivery's report.
    /// </summary>
    private sealed class IntakeRun(DeliveryContext context, Attempt attempt, PipelineLock pipelineLock, ILogger log)
    {
        public DeliveryContext Context { get; } = context;
        public Attempt Attempt { get; } = attempt;
        public PipelineLock Lock { get; } = pipelineLock;
        public ILogger Log { get; } = log;
        public List<LedgerEntry> Entries { get; } = [];
        public IntakeState State { get; set; } = IntakeState.Started;

        /// <summary>The step running (or about to): its name, its evidence collector and its failure statement.</summary>
        public string Stage { get; private set; } = "fetch";
        public StepEvidence Found { get; private set; } = new();
        public Func<StepFailure, DateTimeOffset, InTotoStatement> AttestFailure { get; private set; } = null!;

        /// <summary>The outcome is recorded (a failure, or every step passed): a cancellation changes nothing any more.</summary>
        public bool Decided { get; set; }

        private readonly List<IAsyncDisposable> _ahead = [];

        /// <summary>Work started ahead of its step (<see cref="ScanAhead"/>, <see cref="ImageAhead"/>): stopped when the delivery stops.</summary>
        public T Ahead<T>(T work) where T : IAsyncDisposable?
        {
            if (work is not null) _ahead.Add(work);
            return work;
        }

        /// <summary>Cancels the work ahead and waits for it: before the delivery's folder is quarantined or removed, and when the run ends.</summary>
        public async Task StopAheadAsync()
        {
            foreach (var work in _ahead) await work.DisposeAsync().ConfigureAwait(false);
            _ahead.Clear();
        }

        /// <summary>Set when a step failed: the rejected or pending delivery.</summary>
        public DeliveryReport? Report { get; set; }

        public StepEvidence Enter<TIn, TOut>(IIntakeStep<TIn, TOut> step, TIn input) where TOut : class
        {
            Stage = step.Name;
            Found = new StepEvidence();
            AttestFailure = (failure, at) => step.AttestFailure(Context, input, failure, at);
            return Found;
        }
    }

    /// <summary>
    /// Runs one step: the lock check and test hooks around it, its ledger entry with its own
    /// statement and the intake state's move in one transaction, and on failure the delivery's end
    /// (rejected and quarantined for a finding, pending for an outage of our own infrastructure).
    /// Returns the step's output, or null when the delivery stopped here (<see cref="IntakeRun.Report"/>).
    /// </summary>
    private async Task<TOut?> StepAsync<TIn, TOut>(IntakeRun run, IIntakeStep<TIn, TOut> step, TIn input, CancellationToken ct) where TOut : class
    {
        var (context, dlog) = (run.Context, run.Log);
        var (id, definition, tag) = (context.DeliveryId, context.Definition, context.Tag);
        var found = run.Enter(step, input);
        StageRecord record;
        StepResult<TOut>? result = null;
        string? failCode = null, failMessage = null;
        var kind = FailureKind.Verdict;
        // Before every step (publish and push write to VCS B and the registry): a node that lost its lock stops here.
        await run.Lock.EnsureHeldAsync(ct).ConfigureAwait(false);
        UnsafeTestFault.At($"stage:{step.Name}:before");
        try
        {
            result = await step.RunAsync(context, input, found, ct).ConfigureAwait(false);
            UnsafeTestFault.At($"stage:{step.Name}:after");
            record = new StageRecord(id, definition.Name, step.Name, Verdict.Passed, null, null, result.Outcome.InputDigest, result.Outcome.OutputDigest,
                new Dictionary<string, string>(result.Outcome.Evidence, StringComparer.Ordinal));
            dlog.Information("Stage {Stage} passed ({Output})", step.Name, result.Outcome.OutputDigest);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            (failCode, failMessage) = ErrorCodes.Describe(e);
            kind = FailureClass.Classify(e);
            var evidence = FailureEvidence(e, failCode, found);
            if (kind == FailureKind.Infrastructure) evidence["failureKind"] = "infrastructure";
            record = new StageRecord(id, definition.Name, step.Name, Verdict.Failed, failCode, failMessage, null, null, evidence);
            if (kind == FailureKind.Infrastructure)
                dlog.Warning("Stage {Stage} could not run: {Code} {Reason} (our infrastructure, not the delivery)", step.Name, failCode, failMessage);
            else if (IsSecurityEvent(failCode))
                dlog.Error("SECURITY EVENT {Code} in {Pipeline} for tag {Tag}: {Reason}", failCode, definition.Name, tag.Name, failMessage);
            else
                dlog.Warning("Stage {Stage} failed: {Code} {Reason}", step.Name, failCode, failMessage);
        }

        await run.Lock.EnsureHeldAsync(ct).ConfigureAwait(false);
        InTotoStatement? statement = null;
        if (ledger.Signing is not null)
        {
            statement = result is not null
                ? step.Attest(context, input, result, time.GetUtcNow())
                : run.AttestFailure(new StepFailure(failCode!, failMessage!, record.Evidence, found.Subjects, found.Signer), time.GetUtcNow());
        }

        var to = result is not null ? IntakeStateMachine.After(step.Name) : IntakeState.Failed;
        run.Entries.Add(await ledger.AppendStepAsync(record, statement, run.State, to, ct).ConfigureAwait(false));
        run.State = to;
        UnsafeTestFault.At($"stage:{step.Name}:recorded");
        if (result is not null) return result.Output;

        run.Decided = true;
        await run.StopAheadAsync().ConfigureAwait(false);
        run.Report = kind == FailureKind.Infrastructure
            ? await PendAsync(run, step.Name, failCode!, failMessage!).ConfigureAwait(false)
            : await RejectAsync(run, step.Name, failCode!, failMessage!).ConfigureAwait(false);
        return null;
    }

    private async Task<DeliveryReport> PendAsync(IntakeRun run, string stage, string failCode, string failMessage)
    {
        var (id, definition, tag, dlog) = (run.Context.DeliveryId, run.Context.Definition, run.Context.Tag, run.Log);
        var due = time.GetUtcNow() + Backoff.Delay(run.Attempt.Number);
        await ledger.MarkPendingAsync(id, failCode, failMessage, due, CancellationToken.None).ConfigureAwait(false);
        await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
        TryDelete(run.Context.WorkDir);
        dlog.Warning("Delivery {DeliveryId} pending after {Stage}: {Code}; attempt {Attempt} at {Due} (or now: 'pipeline retry {DeliveryId}')",
            id, stage, failCode, run.Attempt.Number + 1, due, id);
        return new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Pending, failCode, failMessage, run.Entries, [], null) { Attempt = run.Attempt.Number, NextAttemptAt = due };
    }

    private async Task<DeliveryReport> RejectAsync(IntakeRun run, string stage, string failCode, string failMessage)
    {
        var (id, definition, tag, dlog) = (run.Context.DeliveryId, run.Context.Definition, run.Context.Tag, run.Log);
        var quarantine = Quarantine(definition, id, run.Context.WorkDir, tag, failCode, failMessage, stage, dlog);
        await run.Lock.EnsureHeldAsync(CancellationToken.None).ConfigureAwait(false);
        await ledger.FinishDeliveryAsync(id, DeliveryStatus.Rejected, failCode, failMessage, null, CancellationToken.None).ConfigureAwait(false);
        await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
        dlog.Warning("Delivery {DeliveryId} rejected at {Stage}: {Code}; files kept in quarantine at {Quarantine}", id, stage, failCode, quarantine);
        return new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Rejected, failCode, failMessage, run.Entries, [], quarantine) { Attempt = run.Attempt.Number };
    }

    /// <summary>
    /// The run was cancelled (shutdown) in the middle of the current step: records that in the
    /// ledger (the step's own failure statement, with what it had established) and moves the intake
    /// state to interrupted, leaves the delivery pending and due at once (the next pass retries it)
    /// and removes its work folder. Nothing is written when the lock is gone.
    /// </summary>
    private async Task InterruptAsync(IntakeRun run)
    {
        const string code = "ENG-CANCELLED", reason = "the run was cancelled (engine shutting down); the next pass retries this delivery";
        var (context, dlog, stage) = (run.Context, run.Log, run.Stage);
        await run.StopAheadAsync().ConfigureAwait(false);
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal) { ["failedCheck"] = code, ["failureKind"] = "infrastructure" };
        var record = new StageRecord(context.DeliveryId, context.Definition.Name, stage, Verdict.Failed, code, reason, null, null, evidence);
        await run.Lock.EnsureHeldAsync(CancellationToken.None).ConfigureAwait(false);
        var statement = ledger.Signing is null ? null : run.AttestFailure(new StepFailure(code, reason, evidence, run.Found.Subjects, run.Found.Signer), time.GetUtcNow());
        // The state as recorded, not as remembered: a cancellation may have cut off the reply to a committed step.
        var state = await ledger.GetIntakeStateAsync(context.DeliveryId, CancellationToken.None).ConfigureAwait(false) ?? run.State;
        await ledger.AppendStepAsync(record, statement, state, IntakeState.Interrupted, CancellationToken.None).ConfigureAwait(false);
        await ledger.MarkPendingAsync(context.DeliveryId, code, reason, time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
        TryDelete(context.WorkDir);
        dlog.Warning("Delivery {DeliveryId} cancelled in {Stage} by shutdown; recorded as pending, the next pass retries it", context.DeliveryId, stage);
    }

    /// <summary>What a failed step records: the evidence of its checks that passed (its own collector), and which check failed.</summary>
    private static Dictionary<string, string> FailureEvidence(Exception e, string code, StepEvidence found)
    {
        var evidence = new Dictionary<string, string>(found.Checks, StringComparer.Ordinal);
        if (e is Pipeline.Checkup.Policies.ScanRejectedException sr)
            foreach (var (k, v) in sr.Evidence) evidence[k] = v;
        evidence["failedCheck"] = code;
        evidence["exception"] = e.GetType().Name;
        return evidence;
    }
}
