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
/// the stages in order. Every stage, pass or fail, is recorded in the ledger; a rejected delivery
/// stops at the failing stage, pushes nothing further, and its files go to quarantine.
/// </summary>
public sealed class DeliveryRunner(
    EngineSettings settings,
    LedgerStore ledger,
    Func<PipelineDefinition, IReadOnlyList<IStage>> stagesFor,
    TimeProvider time,
    ILogger log)
{
    /// <summary>The lifecycle's acceptance hook (tracks the delivery, supersedes older ones, runs an automatic first stage).</summary>
    public Func<PipelineDefinition, DeliveryReport, CancellationToken, Task>? OnAccepted { get; set; }

    public async Task<RunReport> RunOnceAsync(PipelineDefinition definition, CancellationToken ct)
    {
        var log1 = log.ForContext("Pipeline", definition.Name);
        await using var pipelineLock = await ledger.TryLockPipelineAsync(definition.Name, ct).ConfigureAwait(false)
            ?? throw new PipelineException("RUN-BUSY", $"pipeline '{definition.Name}' is already running (in this or another engine process); try again when it has finished");

        Directory.CreateDirectory(settings.WorkDir);
        using var mirror = SupplierMirror.Open(Path.Combine(settings.WorkDir, "mirrors", definition.Name + ".git"), definition.Source.Url);
        log1.Information("Fetching tags of {Pipeline} from {Source}", definition.Name, SupplierMirror.Redact(definition.Source.Url.ToString()));
        mirror.Fetch(GitCredentials.FromFile(definition.Source.CredentialsFile), ct);

        var deliveries = new List<DeliveryReport>();
        var skipped = new List<string>();
        // Read once per pass; kept current as this pass accepts deliveries (rollback protection).
        var lastAccepted = await ledger.LastAcceptedTagAsync(definition.Name, ct).ConfigureAwait(false);
        foreach (var tag in mirror.ListTags(definition.Source.TagPattern))
        {
            ct.ThrowIfCancellationRequested();
            var seen = await ledger.FindDeliveriesAsync(definition.Name, tag.Name, ct).ConfigureAwait(false);
            if (seen.Any(d => d.TagObjectId == tag.ObjectId && d.Status != DeliveryStatus.Running))
            {
                skipped.Add(tag.Name);
                continue;
            }

            var firstSeen = seen.Count > 0 ? seen[0].TagObjectId : null;
            var report = await ProcessAsync(definition, mirror, tag, firstSeen, lastAccepted, log1, ct).ConfigureAwait(false);
            deliveries.Add(report);
            if (report.Status == DeliveryStatus.Accepted && (lastAccepted is null || VersionOrder.Compare(tag.Name, lastAccepted) > 0))
                lastAccepted = tag.Name;
        }

        log1.Information("Pipeline {Pipeline}: {New} new deliveries, {Skipped} already processed", definition.Name, deliveries.Count, skipped.Count);
        return new RunReport(definition.Name, deliveries, skipped);
    }

    private async Task<DeliveryReport> ProcessAsync(PipelineDefinition definition, SupplierMirror mirror, TagInfo tag, string? firstSeenObjectId, string? lastAccepted, ILogger plog, CancellationToken ct)
    {
        var id = Guid.CreateVersion7(time.GetUtcNow());
        var dlog = plog.ForContext("DeliveryId", id).ForContext("Tag", tag.Name);
        var workDir = Path.Combine(settings.WorkDir, "runs", id.ToString("N"));
        Directory.CreateDirectory(workDir);
        await ledger.StartDeliveryAsync(id, definition.Name, tag.Name, tag.ObjectId, ct).ConfigureAwait(false);
        dlog.Information("Delivery {DeliveryId} of {Pipeline} for tag {Tag} started", id, definition.Name, tag.Name);

        var context = new DeliveryContext(id, definition, settings, mirror, tag, workDir, time) { FirstSeenObjectId = firstSeenObjectId, LastAcceptedTag = lastAccepted };
        var entries = new List<LedgerEntry>();
        var statements = new List<InTotoStatement>();
        foreach (var stage in stagesFor(definition))
        {
            StageRecord record;
            StageOutcome? outcome = null;
            string? failCode = null, failMessage = null;
            context.StageEvidence.Clear();
            try
            {
                outcome = await stage.ExecuteAsync(context, ct).ConfigureAwait(false);
                // A copy: a stage may hand back the context's working evidence map, which the next stage reuses.
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Passed, null, null, outcome.InputDigest, outcome.OutputDigest,
                    new Dictionary<string, string>(outcome.Evidence, StringComparer.Ordinal));
                dlog.Information("Stage {Stage} passed ({Output})", stage.Name, outcome.OutputDigest);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                (failCode, failMessage) = ErrorCodes.Describe(e);
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Failed, failCode, failMessage, null, null, FailureEvidence(e, failCode, context));
                if (IsSecurityEvent(failCode))
                    dlog.Error("SECURITY EVENT {Code} in {Pipeline} for tag {Tag}: {Reason}", failCode, definition.Name, tag.Name, failMessage);
                else
                    dlog.Warning("Stage {Stage} failed: {Code} {Reason}", stage.Name, failCode, failMessage);
            }
            catch (OperationCanceledException)
            {
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Failed, "ENG-CANCELLED", "the run was cancelled (engine shutting down)", null, null,
                    new Dictionary<string, string>());
                entries.Add(await ledger.AppendAsync(record, Attest(context, stage.Name, null, record, statements), CancellationToken.None).ConfigureAwait(false));
                await ledger.FinishDeliveryAsync(id, DeliveryStatus.Running, "ENG-CANCELLED", "cancelled; the next run retries this tag", null, CancellationToken.None).ConfigureAwait(false);
                await CheckpointAsync(dlog, CancellationToken.None).ConfigureAwait(false);
                throw;
            }

            entries.Add(await ledger.AppendAsync(record, Attest(context, stage.Name, outcome, record, statements), ct).ConfigureAwait(false));
            if (failCode is null) continue;

            var quarantine = Quarantine(definition, id, workDir, tag, failCode, failMessage!, stage.Name);
            await ledger.FinishDeliveryAsync(id, DeliveryStatus.Rejected, failCode, failMessage, null, ct).ConfigureAwait(false);
            await CheckpointAsync(dlog, ct).ConfigureAwait(false);
            dlog.Warning("Delivery {DeliveryId} rejected at {Stage}: {Code}; files kept in quarantine at {Quarantine}", id, stage.Name, failCode, quarantine);
            return new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Rejected, failCode, failMessage, entries, [], quarantine);
        }

        await ledger.FinishDeliveryAsync(id, DeliveryStatus.Accepted, null, null, string.Join(" ", context.PushedImages), ct).ConfigureAwait(false);
        await CheckpointAsync(dlog, ct).ConfigureAwait(false);
        await AttachAttestationsAsync(context, entries, dlog, ct).ConfigureAwait(false);
        TryDelete(workDir);
        dlog.Information("Delivery {DeliveryId} accepted: {Images}", id, context.PushedImages);
        var accepted = new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Accepted, null, null, entries, context.PushedImages.ToArray(), null);
        if (OnAccepted is { } lifecycle) await lifecycle(definition, accepted, ct).ConfigureAwait(false);
        return accepted;
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
        code is "FETCH-TAG-MOVED" or "CHK-ROLLBACK" or "CHK-SIG-REVOKED" or "CHK-GIT-003" || code.StartsWith("FETCH-UNSAFE", StringComparison.Ordinal);

    /// <summary>The stage's in-toto statement (null when the ledger does not sign).</summary>
    private InTotoStatement? Attest(DeliveryContext context, string stage, StageOutcome? outcome, StageRecord record, List<InTotoStatement> statements)
    {
        if (ledger.Signing is null) return null;
        var statement = StageAttestations.Build(context, stage, outcome, record.ReasonCode, record.Reason, time.GetUtcNow(), statements);
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
    private async Task AttachAttestationsAsync(DeliveryContext context, IReadOnlyList<LedgerEntry> entries, ILogger dlog, CancellationToken ct)
    {
        var builds = context.Builds;
        if (ledger.Signing is null || builds.Count == 0) return;
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
            foreach (var build in builds)
            {
                var subject = build.IndexBytes is { } ib
                    ? new Pipeline.Registry.Model.Descriptor(Pipeline.Registry.Model.MediaTypes.OciIndex, build.Digest, ib.LongLength)
                    : build.Platforms[0].Image.ManifestDescriptor;
                foreach (var (stage, index, predicateType, envelope) in envelopes)
                {
                    var blob = new Pipeline.Registry.Model.Descriptor(DsseArtifactType, Pipeline.Registry.Model.Digest.Compute(envelope), envelope.LongLength);
                    await client.AttachArtifactAsync(build.Repository, subject, DsseArtifactType, [(blob, envelope)], new Dictionary<string, string>
                    {
                        [StageAnnotation] = stage,
                        [LogIndexAnnotation] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ["in-toto.io/predicate-type"] = predicateType,
                    }, ct).ConfigureAwait(false);
                }

                dlog.Information("Attached {Count} stage attestations to {Repository}@{Digest}", envelopes.Count, build.Repository, build.Digest);
            }
        }
        catch (Exception e) when (e is Pipeline.Registry.RegistryException or PipelineException or HttpRequestException or IOException)
        {
            dlog.Error("ATT-ATTACH-FAILED: could not attach the stage attestations to the pushed image: {Error}; they are in the transparency log ('pipeline audit export')", e.Message);
        }
    }

    /// <summary>Moves the delivery's files to a read-only quarantine folder with a report for the security team.</summary>
    private string Quarantine(PipelineDefinition definition, Guid id, string workDir, TagInfo tag, string code, string message, string stage) =>
        new Quarantine.QuarantineStore(settings.WorkDir, time).Add(definition.Name, id, workDir, tag.Name, tag.ObjectId, stage, code, message);

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // Left for the operator; it holds only verified, pushed content.
        }
    }
}
