using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Serilog;

namespace Pipeline.Engine.Runs;

public sealed partial class DeliveryRunner
{
    /// <summary>
    /// The one place a delivery becomes accepted: every step passed and was recorded (intake state
    /// pushed). Signs a checkpoint, attaches the step attestations to the pushed images, then moves
    /// it to accepted (in this order, so a node killed on the way leaves the delivery running in
    /// state pushed and the next pass resumes it: <see cref="ResumePushedAsync"/>). Not cancelled by
    /// a shutdown: once every step is recorded, the acceptance is finished.
    /// </summary>
    private async Task<DeliveryReport> AcceptAsync(IntakeRun run, Pushed pushed)
    {
        var context = run.Context;
        var subjects = pushed.Built.Builds.Select(b => new AttestationSubject(b.Repository, b.IndexBytes is { } ib
            ? new Pipeline.Registry.Model.Descriptor(Pipeline.Registry.Model.MediaTypes.OciIndex, b.Digest, ib.LongLength)
            : b.Platforms[0].Image.ManifestDescriptor)).ToList();
        return await FinishAcceptanceAsync(context.Definition, context.DeliveryId, context.Tag.Name, pushed.References, subjects, run.Entries, context.WorkDir, run.Lock, run.Log)
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
        await ledger.AcceptDeliveryAsync(id, string.Join(" ", images), ct).ConfigureAwait(false);
        TryDelete(workDir);
        dlog.Information("Delivery {DeliveryId} accepted: {Images}", id, images);
        var accepted = new DeliveryReport(id, definition.Name, tag, DeliveryStatus.Accepted, null, null, entries, images, null);
        if (OnAccepted is { } lifecycle) await lifecycle(definition, accepted, ct).ConfigureAwait(false);
        return accepted;
    }

    /// <summary>Failures that point at an attack rather than a mistake; logged as security events.</summary>
    internal static bool IsSecurityEvent(string code) =>
        code is "FETCH-TAG-MOVED" or "FETCH-TAG-REPLAYED" or "FETCH-SYMLINK" or "CHK-ROLLBACK" or "CHK-SIG-REVOKED" or "CHK-GIT-003"
        || code.StartsWith("FETCH-UNSAFE", StringComparison.Ordinal);

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
