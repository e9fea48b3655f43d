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
            deliveries.Add(await ProcessAsync(definition, mirror, tag, firstSeen, log1, ct).ConfigureAwait(false));
        }

        log1.Information("Pipeline {Pipeline}: {New} new deliveries, {Skipped} already processed", definition.Name, deliveries.Count, skipped.Count);
        return new RunReport(definition.Name, deliveries, skipped);
    }

    private async Task<DeliveryReport> ProcessAsync(PipelineDefinition definition, SupplierMirror mirror, TagInfo tag, string? firstSeenObjectId, ILogger plog, CancellationToken ct)
    {
        var id = Guid.CreateVersion7(time.GetUtcNow());
        var dlog = plog.ForContext("DeliveryId", id).ForContext("Tag", tag.Name);
        var workDir = Path.Combine(settings.WorkDir, "runs", id.ToString("N"));
        Directory.CreateDirectory(workDir);
        await ledger.StartDeliveryAsync(id, definition.Name, tag.Name, tag.ObjectId, ct).ConfigureAwait(false);
        dlog.Information("Delivery {DeliveryId} of {Pipeline} for tag {Tag} started", id, definition.Name, tag.Name);

        var context = new DeliveryContext(id, definition, settings, mirror, tag, workDir, time) { FirstSeenObjectId = firstSeenObjectId };
        var entries = new List<LedgerEntry>();
        var statements = new List<InTotoStatement>();
        foreach (var stage in stagesFor(definition))
        {
            StageRecord record;
            StageOutcome? outcome = null;
            string? failCode = null, failMessage = null;
            try
            {
                outcome = await stage.ExecuteAsync(context, ct).ConfigureAwait(false);
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Passed, null, null, outcome.InputDigest, outcome.OutputDigest, outcome.Evidence);
                dlog.Information("Stage {Stage} passed ({Output})", stage.Name, outcome.OutputDigest);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                (failCode, failMessage) = ErrorCodes.Describe(e);
                record = new StageRecord(id, definition.Name, stage.Name, Verdict.Failed, failCode, failMessage, null, null,
                    new Dictionary<string, string> { ["exception"] = e.GetType().Name });
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
        TryDelete(workDir);
        dlog.Information("Delivery {DeliveryId} accepted: {Images}", id, context.PushedImages);
        return new DeliveryReport(id, definition.Name, tag.Name, DeliveryStatus.Accepted, null, null, entries, context.PushedImages.ToArray(), null);
    }

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

    /// <summary>Moves the delivery's files to a read-only quarantine folder with a report for the security team.</summary>
    private string Quarantine(PipelineDefinition definition, Guid id, string workDir, TagInfo tag, string code, string message, string stage)
    {
        var dir = Path.Combine(settings.WorkDir, "quarantine", definition.Name, id.ToString("N"));
        Directory.CreateDirectory(Path.GetDirectoryName(dir)!);
        Directory.Move(workDir, dir);
        var report = new
        {
            deliveryId = id,
            pipeline = definition.Name,
            tag = tag.Name,
            tagObjectId = tag.ObjectId,
            stage,
            code,
            reason = message,
            quarantinedAt = time.GetUtcNow(),
        };
        File.WriteAllText(Path.Combine(dir, "report.json"), JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
        MakeReadOnly(new DirectoryInfo(dir));
        return dir;
    }

    private static void MakeReadOnly(DirectoryInfo dir)
    {
        foreach (var f in dir.EnumerateFiles("*", SearchOption.AllDirectories))
        {
            if (f.LinkTarget is null) f.UnixFileMode &= ~(UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        }

        foreach (var d in dir.EnumerateDirectories("*", SearchOption.AllDirectories).Append(dir))
            d.UnixFileMode &= ~(UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
    }

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
