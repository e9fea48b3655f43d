using Pipeline.Engine.Configuration;
using Pipeline.Engine.Ledger;
using Serilog;

namespace Pipeline.Engine.Runs;

/// <summary>
/// What a killed or crashed run leaves behind. Called with the pipeline's lock held, so every
/// delivery of the pipeline still marked running was cut off: its holder is gone (else the lock
/// would not be free). Those in intake state pushed were resumed before (<c>DeliveryRunner.ResumePushedAsync</c>); each other gets a signed <c>interrupted</c> ledger entry with <c>ENG-INTERRUPTED</c>
/// and becomes pending, due at once (this pass retries its tag from the start); its work folder
/// is removed, and so are the work folders this node left for deliveries another node has
/// recovered since, the temporary files of an interrupted git fetch and blobs that nothing has
/// written to for a while.
/// </summary>
public sealed class StaleDeliveries(EngineSettings settings, LedgerStore ledger, TimeProvider time)
{
    /// <summary>Stage name of the ledger entry that records an interruption.</summary>
    public const string InterruptedStage = "interrupted";

    public const string Code = "ENG-INTERRUPTED";

    /// <summary>A temporary blob nobody wrote to for this long belongs to no live run.</summary>
    public static readonly TimeSpan AbandonedBlobAge = TimeSpan.FromMinutes(30);

    public async Task<int> RecoverAsync(string pipeline, PipelineLock pipelineLock, string mirrorDir, ILogger log, CancellationToken ct)
    {
        var stale = (await ledger.ListUnfinishedAsync(pipeline, ct).ConfigureAwait(false)).Where(d => d.Status == DeliveryStatus.Running).ToList();
        foreach (var d in stale)
        {
            var entries = await ledger.ReadAsync(d.Id, ct).ConfigureAwait(false);
            var last = entries.Count > 0 ? entries[^1].Record : null;
            var reason = "the engine stopped while this delivery was running (killed, crashed or lost its database lock)" +
                         (last is null ? " before its first stage was recorded" : $" after stage {last.Stage} was recorded") + "; the next attempt starts it again";
            var evidence = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["failedCheck"] = Code,
                ["failureKind"] = "infrastructure",
                ["lastRecordedStage"] = last?.Stage ?? "",
                ["startedAt"] = d.StartedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            };
            await pipelineLock.EnsureHeldAsync(ct).ConfigureAwait(false);
            // The interruption and the intake state's move to interrupted commit together (from the state the row records).
            await ledger.AppendStepAsync(new StageRecord(d.Id, pipeline, InterruptedStage, Verdict.Failed, Code, reason, null, null, evidence), null,
                d.IntakeState, IntakeState.Interrupted, ct).ConfigureAwait(false);
            await ledger.MarkPendingAsync(d.Id, Code, reason, time.GetUtcNow(), ct).ConfigureAwait(false);
            DeliveryRunner.TryDelete(Path.Combine(settings.WorkDir, "runs", d.Id.ToString("N")));
            log.Warning("Delivery {DeliveryId} of {Tag} was left running by a stopped engine (last recorded stage: {Stage}); recorded as interrupted, retried now",
                d.Id, d.Tag, last?.Stage ?? "none");
        }

        await CleanOrphanRunFoldersAsync(pipeline, log, ct).ConfigureAwait(false);
        CleanMirrorLeftovers(mirrorDir, log);
        CleanAbandonedBlobs(Path.Combine(settings.WorkDir, "blobs", "tmp"), log);
        if (stale.Count > 0 && ledger.Signing is not null)
        {
            try
            {
                await ledger.CheckpointAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or PipelineException)
            {
                log.Error("Could not sign a ledger checkpoint: {Error}; run 'pipeline audit checkpoint'", e.Message);
            }
        }

        return stale.Count;
    }

    /// <summary>
    /// Work folders of this pipeline's deliveries that this node's folder still holds although the
    /// delivery is over: a node killed mid-delivery whose delivery another node of the cluster then
    /// recovered (that node cannot reach this node's disk). Holding the pipeline's lock at the start
    /// of a pass, no delivery of the pipeline runs in this folder, so each such folder is removed.
    /// </summary>
    private async Task CleanOrphanRunFoldersAsync(string pipeline, ILogger log, CancellationToken ct)
    {
        var runs = Path.Combine(settings.WorkDir, "runs");
        if (!Directory.Exists(runs)) return;
        foreach (var dir in Directory.EnumerateDirectories(runs))
        {
            if (!Guid.TryParseExact(Path.GetFileName(dir), "N", out var id)) continue;
            if (await ledger.GetDeliveryAsync(id, ct).ConfigureAwait(false) is not { } d || d.Pipeline != pipeline) continue;
            DeliveryRunner.TryDelete(dir);
            log.Information("Removed the work folder of delivery {DeliveryId} ({Tag}, now {Status}), left by this node when it stopped", id, d.Tag, d.Status);
        }
    }

    /// <summary>Temporary pack files of a fetch that was killed (libgit2 and git name them so until they are complete).</summary>
    internal static void CleanMirrorLeftovers(string mirrorDir, ILogger log)
    {
        var packDir = Path.Combine(mirrorDir, "objects", "pack");
        if (!Directory.Exists(packDir)) return;
        foreach (var f in Directory.EnumerateFiles(packDir))
        {
            var name = Path.GetFileName(f);
            if (!(name.StartsWith("pack_git2_", StringComparison.Ordinal) || name.StartsWith("tmp_", StringComparison.Ordinal))) continue;
            try
            {
                File.Delete(f);
                log.Information("Removed {File}, left by an interrupted fetch", name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.Warning("Could not remove {File} left by an interrupted fetch: {Error}", f, e.Message);
            }
        }
    }

    private void CleanAbandonedBlobs(string tmpDir, ILogger log)
    {
        if (!Directory.Exists(tmpDir)) return;
        var cutoff = time.GetUtcNow() - AbandonedBlobAge;
        foreach (var f in new DirectoryInfo(tmpDir).EnumerateFiles("*.part"))
        {
            if (f.LastWriteTimeUtc > cutoff.UtcDateTime) continue;
            try
            {
                var size = f.Length;
                f.Delete();
                log.Information("Removed the abandoned temporary blob {File} ({Bytes} bytes)", f.Name, size);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                log.Warning("Could not remove the abandoned temporary blob {File}: {Error}", f.FullName, e.Message);
            }
        }
    }
}
