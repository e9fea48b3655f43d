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
/// the stages in order. Every stage, pass or fail, is recorded in the ledger. A finding about the
/// delivery rejects it: it stops at the failing stage, pushes nothing further, and its files go
/// to quarantine. An outage of our own infrastructure (<see cref="FailureClass"/>) leaves it
/// pending instead, retried by a later pass after a backoff (or at once after <c>pipeline retry</c>);
/// later tags of the pipeline wait behind it so that versions are still accepted in order.
/// </summary>
public sealed partial class DeliveryRunner(
    EngineSettings settings,
    LedgerStore ledger,
    Func<PipelineDefinition, IReadOnlyList<IStage>> stagesFor,
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

        var context = new DeliveryContext(id, definition, settings, mirror, tag, workDir, time) { FirstSeenObjectId = firstSeenObjectId, LastAcceptedTag = lastAccepted };
        var statements = new List<InTotoStatement>();
        var current = new StageCursor();
        try
        {
            return await RunStagesAsync(context, attempt, current, statements, pipelineLock, dlog, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && !current.Decided)
        {
            await InterruptAsync(context, current.Stage ?? "fetch", pipelineLock, statements, dlog).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Where a delivery is: the stage running, and whether its outcome is already recorded (then a cancellation changes nothing).</summary>
    private sealed class StageCursor
    {
        public string? Stage { get; set; }
        public bool Decided { get; set; }
    }

    private async Task<DeliveryReport> RunStagesAsync(DeliveryContext context, Attempt attempt, StageCursor current, List<InTotoStatement> statements, PipelineLock pipelineLock,
        ILogger dlog, CancellationToken ct)
    {
        var (id, definition, tag, workDir) = (context.DeliveryId, context.Definition, context.Tag, context.WorkDir);
        var entries = new List<LedgerEntry>();
        foreach (var stage in stagesFor(definition))
        {
            current.Stage = stage.Name;
            StageRecord record;
            StageOutcome? outcome = null;
            string? failCode = null, failMessage = null;
            var kind = FailureKind.Verdict;
            context.StageEvidence.Clear();
            // Before every stage (publish and push write to VCS B and the registry): a node that lost its lock stops here.
            await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
            UnsafeTestFault.At($"stage:{stage.Name}:before");
            try
            {
                outcome = await stage.ExecuteAsync(context, ct).ConfigureAwait(false);
                UnsafeTestFault.At($"stage:{stage.Name}:after");
                // A copy: a stage may hand back the context's working evidence map, which the next stage reuses.
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Passed, null, null, outcome.InputDigest, outcome.OutputDigest,
                    new Dictionary<string, string>(outcome.Evidence, StringComparer.Ordinal));
                dlog.Information("Stage {Stage} passed ({Output})", stage.Name, outcome.OutputDigest);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                (failCode, failMessage) = ErrorCodes.Describe(e);
                kind = FailureClass.Classify(e);
                var evidence = FailureEvidence(e, failCode, context);
                if (kind == FailureKind.Infrastructure) evidence["failureKind"] = "infrastructure";
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Failed, failCode, failMessage, null, null, evidence);
                if (kind == FailureKind.Infrastructure)
                    dlog.Warning("Stage {Stage} could not run: {Code} {Reason} (our infrastructure, not the delivery)", stage.Name, failCode, failMessage);
                else if (IsSecurityEvent(failCode))
                    dlog.Error("SECURITY EVENT {Code} in {Pipeline} for tag {Tag}: {Reason}", failCode, definition.Name, tag.Name, failMessage);
                else
                    dlog.Warning("Stage {Stage} failed: {Code} {Reason}", stage.Name, failCode, failMessage);
            }

            await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
            entries.Add(await ledger.AppendAsync(record, Attest(context, stage.Name, outcome, record, statements), ct).ConfigureAwait(false));
            UnsafeTestFault.At($"stage:{stage.Name}:recorded");
            if (failCode is null) continue;

            current.Decided = true;
            if (kind == FailureKind.Infrastructure)
            {
                var due = time.GetUtcNow() + Backoff.Delay(attempt.Number);
                await ledger.MarkPendingAsync(id, failCode, failMessage!, due, CancellationToken.None).ConfigureAwait(false);
                await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
                TryDelete(workDir);
                dlog.Warning("Delivery {DeliveryId} pending after {Stage}: {Code}; attempt {Attempt} at {Due} (or now: 'pipeline retry {DeliveryId}')",
                    id, stage.Name, failCode, attempt.Number + 1, due, id);
                return new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Pending, failCode, failMessage, entries, [], null) { Attempt = attempt.Number, NextAttemptAt = due };
            }

            var quarantine = Quarantine(definition, id, workDir, tag, failCode, failMessage!, stage.Name, dlog);
            await pipelineLock.EnsureHeldAsync(CancellationToken.None).ConfigureAwait(false);
            await ledger.FinishDeliveryAsync(id, DeliveryStatus.Rejected, failCode, failMessage, null, CancellationToken.None).ConfigureAwait(false);
            await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
            dlog.Warning("Delivery {DeliveryId} rejected at {Stage}: {Code}; files kept in quarantine at {Quarantine}", id, stage.Name, failCode, quarantine);
            return new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Rejected, failCode, failMessage, entries, [], quarantine) { Attempt = attempt.Number };
        }

        await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
        current.Decided = true;
        return await AcceptAsync(context, entries, pipelineLock, dlog) with { Attempt = attempt.Number };
    }

    /// <summary>
    /// The one place a delivery becomes accepted: every stage passed and was recorded. Signs a
    /// checkpoint, attaches the stage attestations to the pushed images, then records the status
    /// (in this order, so a node killed on the way leaves the delivery running and the next pass
    /// resumes it: <see cref="ResumePushedAsync"/>). Not cancelled by a shutdown: once every stage
    /// is recorded, the acceptance is finished.
    /// </summary>
    private async Task<DeliveryReport> AcceptAsync(DeliveryContext context, IReadOnlyList<LedgerEntry> entries, PipelineLock pipelineLock, ILogger dlog)
    {
        var subjects = context.Builds.Select(b => new AttestationSubject(b.Repository, b.IndexBytes is { } ib
            ? new Pipeline.Registry.Model.Descriptor(Pipeline.Registry.Model.MediaTypes.OciIndex, b.Digest, ib.LongLength)
            : b.Platforms[0].Image.ManifestDescriptor)).ToList();
        return await FinishAcceptanceAsync(context.Definition, context.DeliveryId, context.Tag.Name, context.PushedImages.ToArray(), subjects, entries, context.WorkDir, pipelineLock, dlog)
            .ConfigureAwait(false);
    }

    private async Task<DeliveryReport> FinishAcceptanceAsync(PipelineDefinition definition, Guid id, string tag, IReadOnlyList<string> images,
        IReadOnlyList<AttestationSubject> subjects, IReadOnlyList<LedgerEntry> entries, string workDir, PipelineLock pipelineLock, ILogger dlog)
    {
        var ct = CancellationToken.None;
        await CheckpointAsync(dlog, ct).ConfigureAwait(false);
        await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
        await AttachAttestationsAsync(subjects, entries, dlog, ct).ConfigureAwait(false);
        UnsafeTestFault.At("accept:attached");
        await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
        await ledger.FinishDeliveryAsync(id, DeliveryStatus.Accepted, null, null, string.Join(" ", images), ct).ConfigureAwait(false);
        TryDelete(workDir);
        dlog.Information("Delivery {DeliveryId} accepted: {Images}", id, images);
        var accepted = new DeliveryReport(id, definition.Name, tag, DeliveryStatus.Accepted, null, null, entries, images, null);
        if (OnAccepted is { } lifecycle) await lifecycle(definition, accepted, ct).ConfigureAwait(false);
        return accepted;
    }

    /// <summary>
    /// The run was cancelled (shutdown) in the middle of <paramref name="stage"/>: records that in
    /// the ledger, leaves the delivery pending and due at once (the next pass retries it) and
    /// removes its work folder. Nothing is written when the lock is gone.
    /// </summary>
    private async Task InterruptAsync(DeliveryContext context, string stage, PipelineLock pipelineLock, List<InTotoStatement> statements, ILogger dlog)
    {
        const string code = "ENG-CANCELLED", reason = "the run was cancelled (engine shutting down); the next pass retries this delivery";
        var record = new StageRecord(context.DeliveryId, context.Definition.Name, stage, Verdict.Failed, code, reason, null, null,
            new Dictionary<string, string>(StringComparer.Ordinal) { ["failedCheck"] = code, ["failureKind"] = "infrastructure" });
        await pipelineLock.EnsureHeldAsync(CancellationToken.None).ConfigureAwait(false);
        await ledger.AppendAsync(record, Attest(context, stage, null, record, statements), CancellationToken.None).ConfigureAwait(false);
        await ledger.MarkPendingAsync(context.DeliveryId, code, reason, time.GetUtcNow(), CancellationToken.None).ConfigureAwait(false);
        await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
        TryDelete(context.WorkDir);
        dlog.Warning("Delivery {DeliveryId} cancelled in {Stage} by shutdown; recorded as pending, the next pass retries it", context.DeliveryId, stage);
    }

    /// <summary>What a failed stage records: the evidence of its checks that passed, and which check failed.</summary>
    private static Dictionary<string, string> FailureEvidence(Exception e, string code, DeliveryContext context)
    {
        var evidence = new Dictionary<string, string>(context.StageEvidence, StringComparer.Ordinal);
        if (e is Pipeline.Checkup.Policies.ScanRejectedException sr)
            foreach (var (k, v) in sr.Evidence) evidence[k] = v;
        evidence["failedCheck"] = code;
        evidence["exception"] = e.GetType().Name;
        return evidence;
    }

    /// <summary>Failures that point at an attack rather than a mistake; logged as security events.</summary>
    internal static bool IsSecurityEvent(string code) =>
        code is "FETCH-TAG-MOVED" or "FETCH-TAG-REPLAYED" or "FETCH-SYMLINK" or "CHK-ROLLBACK" or "CHK-SIG-REVOKED" or "CHK-GIT-003"
        || code.StartsWith("FETCH-UNSAFE", StringComparison.Ordinal);

    /// <summary>The stage's in-toto statement (null when the ledger does not sign).</summary>
    private InTotoStatement? Attest(DeliveryContext context, string stage, StageOutcome? outcome, StageRecord record, List<InTotoStatement> statements)
    {
        if (ledger.Signing is null) return null;
        var statement = StageAttestations.Build(context, stage, outcome, record.ReasonCode, record.Reason, time.GetUtcNow(), statements, outcome is null ? record.Evidence : null);
        statements.Add(statement);
        return statement;
    }

    /// <summary>Signs a checkpoint after every delivery; a failure is logged (the next delivery or <c>pipeline audit checkpoint</c> makes one).</summary>
    private async Task CheckpointAsync(ILogger dlog, CancellationToken ct)
    {
        if (ledger.Signing is null) return;
        try
        {
            var cp = await ledger.CheckpointAsync(ct).ConfigureAwait(false);
            dlog.Information("Ledger checkpoint signed: size {TreeSize}, root {Root}", cp.TreeSize, Convert.ToHexStringLower(cp.RootHash));
        }
        catch (PipelineException e) when (CheckpointSigner.IsRefusal(e.Code))
        {
            dlog.Error("SECURITY EVENT {Code}: the engine refused to sign a ledger checkpoint: {Error}; compare the database with the checkpoint folder ('pipeline audit verify')", e.Code, e.Message);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or PipelineException)
        {
            dlog.Error("Could not sign a ledger checkpoint: {Error}; run 'pipeline audit checkpoint'", e.Message);
        }
    }

    /// <summary>DSSE envelopes attached as OCI referrers: the artifact type, and the annotation naming the stage.</summary>
    public const string DsseArtifactType = "application/vnd.dsse.envelope.v1+json";
    public const string StageAnnotation = "dev.pipeline.attestation.stage";
    public const string LogIndexAnnotation = "dev.pipeline.attestation.log-index";

    /// <summary>
    /// Attaches every stage's signed envelope, exactly as logged, to each pushed image as an OCI
    /// referrer (one artifact per stage). Done after acceptance because the push stage's own
    /// attestation exists only then. A failure is logged, not fatal: the image is pushed and the
    /// transparency log, not the registry, is the record auditors verify against.
    /// </summary>
    private async Task AttachAttestationsAsync(IReadOnlyList<AttestationSubject> subjects, IReadOnlyList<LedgerEntry> entries, ILogger dlog, CancellationToken ct)
    {
        if (ledger.Signing is null || subjects.Count == 0) return;
        try
        {
            var envelopes = new List<(string Stage, long Index, string PredicateType, byte[] Envelope)>();
            foreach (var e in entries.Where(e => e.LogIndex is not null))
            {
                var leaf = await ledger.Log.GetLeafAsync(e.LogIndex!.Value, ct).ConfigureAwait(false)
                           ?? throw new PipelineException("LOG-LEAF-MISSING", $"log entry {e.LogIndex} of stage {e.Record.Stage} is not in the log");
                envelopes.Add((leaf.Stage, leaf.Index, leaf.PredicateType, leaf.Envelope));
            }

            using var client = RegistryClients.Create(settings);
            foreach (var (repository, subject) in subjects)
            {
                // Attached once: a resumed acceptance skips what the cut-off one attached already.
                var present = (await client.ListReferrersAsync(repository, subject.Digest, DsseArtifactType, ct).ConfigureAwait(false))
                    .Select(d => d.Annotations?.GetValueOrDefault(LogIndexAnnotation)).OfType<string>().ToHashSet(StringComparer.Ordinal);
                var attached = 0;
                foreach (var (stage, index, predicateType, envelope) in envelopes)
                {
                    var logIndex = index.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    if (present.Contains(logIndex)) continue;
                    var blob = new Pipeline.Registry.Model.Descriptor(DsseArtifactType, Pipeline.Registry.Model.Digest.Compute(envelope), envelope.LongLength);
                    await client.AttachArtifactAsync(repository, subject, DsseArtifactType, [(blob, envelope)], new Dictionary<string, string>
                    {
                        [StageAnnotation] = stage,
                        [LogIndexAnnotation] = logIndex,
                        ["in-toto.io/predicate-type"] = predicateType,
                    }, ct).ConfigureAwait(false);
                    attached++;
                }

                dlog.Information("Attached {Count} stage attestations to {Repository}@{Digest} ({Present} were attached already)", attached, repository, subject.Digest, present.Count);
            }
        }
        catch (Exception e) when (e is Pipeline.Registry.RegistryException or PipelineException or HttpRequestException or IOException)
        {
            dlog.Error("ATT-ATTACH-FAILED: could not attach the stage attestations to the pushed image: {Error}; they are in the transparency log ('pipeline audit export')", e.Message);
        }
    }

    /// <summary>Where a delivery's stage attestations are attached: a pushed image (or index) in its repository.</summary>
    private sealed record AttestationSubject(string Repository, Pipeline.Registry.Model.Descriptor Subject);

    /// <summary>Moves the delivery's files to a read-only quarantine folder with a report for the security team.</summary>
    /// <remarks>The verdict stands when the report cannot be written (a full disk): the folder is then listed as broken.</remarks>
    private string Quarantine(PipelineDefinition definition, Guid id, string workDir, TagInfo tag, string code, string message, string stage, ILogger dlog)
    {
        var store = new Quarantine.QuarantineStore(settings.WorkDir, time);
        try
        {
            return store.Add(definition.Name, id, workDir, tag.Name, tag.ObjectId, stage, code, message);
        }
        catch (IOException e)
        {
            var dir = Path.Combine(store.Root, definition.Name, id.ToString("N"));
            dlog.Error("QUARANTINE-REPORT: the quarantine report of {DeliveryId} could not be written ({Error}); its folder {Folder} is listed as broken", id, e.Message, dir);
            return dir;
        }
    }

    internal static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Left for the operator; the next pass's cleanup tries again.
        }
    }
}
