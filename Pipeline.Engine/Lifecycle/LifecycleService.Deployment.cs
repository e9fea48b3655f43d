using Pipeline.Engine.Approvals;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// Deployment into a stage that has an environment (issue 11), after its promotion: check the
/// manifests → deploy → verify, each a signed statement (<c>check:STAGE</c>, <c>deploy:STAGE</c>,
/// <c>verification:STAGE</c>) in the log, and the stage's result moves
/// <c>promoted</c> → <c>deployed</c> (GitOps, waiting for its probe) → <c>verified</c> or <c>failed</c>.
/// Only a verified stage may be left: a failed or unfinished one blocks the request into the next
/// stage (DEPLOY-STAGE-FAILED, DEPLOY-STAGE-UNVERIFIED). The result lives in the lifecycle row, so
/// a crash between the environment commit and its verification resumes exactly once (row lock).
/// </summary>
public sealed partial class LifecycleService
{
    public const string DeploymentType = PredicateTypes.Base + "deployment/v1";
    public const string VerificationType = PredicateTypes.Base + "verification/v1";

    /// <summary>Stage results of the deployment steps (the promotion's own result is <c>promoted</c>).</summary>
    public static class StageResults
    {
        public const string Promoted = "promoted";
        public const string Deployed = "deployed";
        public const string Verified = "verified";
        public const string Failed = "failed";
    }

    /// <summary>Deploys and verifies stages with an environment; null: stages are promotion only (tests and tools without deployments).</summary>
    public StageDeployment? Deployment { get; set; }

    /// <summary>Why the delivery may not leave its stage yet, or null (hooked into the request check and the board).</summary>
    internal static LifecycleException? StageBlock(DeliveryLifecycle d, StagePlan plan)
    {
        if (d.StageIndex < 0 || d.StageIndex >= plan.Stages.Count || plan.Stages[d.StageIndex].Environment is null) return null;
        var stage = plan.Stages[d.StageIndex];
        return d.Result.Result switch
        {
            StageResults.Verified => null,
            StageResults.Failed => new LifecycleException(DeployErrors.StageFailed,
                $"{d.Pipeline} {d.Tag} failed in {stage.Name} ({d.ReasonCode}: {d.Reason}); it cannot be promoted further"),
            _ => new LifecycleException(DeployErrors.StageUnverified,
                $"{d.Pipeline} {d.Tag} is {d.Result.Result} in {stage.Name} but not yet verified" + (d.ReasonCode is null ? "" : $" (last attempt: {d.ReasonCode}: {d.Reason})") +
                "; the deployment resumes on the next pass or with 'pipeline promote --resume'"),
        };
    }

    /// <summary>Deploys and verifies every delivery whose stage is promoted or deployed but not yet verified (a crash, an outage), exactly once each.</summary>
    public async Task<IReadOnlyList<DeliveryLifecycle>> ResumeDeploymentsAsync(string? pipeline, CancellationToken ct)
    {
        var done = new List<DeliveryLifecycle>();
        if (Deployment is null) return done;
        foreach (var d in await _store.ListAsync(pipeline, ct).ConfigureAwait(false))
        {
            if (d.State is not (LifecycleState.InStage or LifecycleState.Final) || d.Result.Result is not (StageResults.Promoted or StageResults.Deployed)) continue;
            var plan = PlanFor(d.Pipeline);
            if (d.StageIndex < 0 || d.StageIndex >= plan.Stages.Count || plan.Stages[d.StageIndex].Environment is null) continue;
            done.Add(await DeployStageAsync(d.DeliveryId, ct).ConfigureAwait(false));
        }

        return done;
    }

    /// <summary>Runs the next deployment step of the delivery's current stage (check+deploy, then verify) under its row lock.</summary>
    private async Task<DeliveryLifecycle> DeployStageAsync(Guid deliveryId, CancellationToken ct)
    {
        var d = await DeployStepAsync(deliveryId, ct).ConfigureAwait(false);
        return d.Result.Result == StageResults.Deployed ? await DeployStepAsync(deliveryId, ct).ConfigureAwait(false) : d;
    }

    private async Task<DeliveryLifecycle> DeployStepAsync(Guid deliveryId, CancellationToken ct)
    {
        await using var tx = await LockOrThrowAsync(deliveryId, ct).ConfigureAwait(false);
        var d = tx.Current;
        var plan = PlanFor(d.Pipeline);
        if (Deployment is not { } deployment || d.State is not (LifecycleState.InStage or LifecycleState.Final)
            || d.StageIndex < 0 || d.StageIndex >= plan.Stages.Count || plan.Stages[d.StageIndex].Environment is null)
            return d;
        var stage = plan.Stages[d.StageIndex];
        IReadOnlyList<DeployStepResult> steps;
        string result;
        try
        {
            if (d.Result.Result == StageResults.Promoted)
            {
                var row = await _ledger.GetDeliveryAsync(deliveryId, ct).ConfigureAwait(false)
                          ?? throw new DeployException(DeployErrors.Internal, $"delivery {deliveryId} is not in the ledger");
                var outcome = await deployment.DeployAsync(d, row.TagObjectId, stage, ct).ConfigureAwait(false);
                steps = outcome.Steps;
                result = outcome.Failed ? StageResults.Failed : outcome.AwaitsVerification ? StageResults.Deployed : StageResults.Verified;
            }
            else if (d.Result.Result == StageResults.Deployed)
            {
                var deployed = (await _ledger.ReadAsync(deliveryId, ct).ConfigureAwait(false))
                               .LastOrDefault(e => e.Record.Stage == $"deploy:{stage.Name}" && e.Record.Verdict == Verdict.Passed)
                               ?? throw new DeployException(DeployErrors.Internal, $"delivery {deliveryId} is deployed in {stage.Name} but the log holds no passed deploy statement");
                var commit = deployed.Record.Evidence.GetValueOrDefault("environment.commit") ?? "";
                var previous = deployed.Record.Evidence.GetValueOrDefault("environment.previousCommit");
                var verified = await deployment.VerifyAsync(d, stage, commit, string.IsNullOrEmpty(previous) ? null : previous, ct).ConfigureAwait(false);
                steps = [verified];
                result = verified.Passed ? StageResults.Verified : StageResults.Failed;
            }
            else return d;
        }
        catch (DeployException e) when (e.IsTransient || e.Code is DeployErrors.PushRejected or DeployErrors.SigningKey)
        {
            // Our side (an outage, or a setting of the environment to fix): paused and retried, never held against the delivery.
            _log.Warning("Deployment of {DeliveryId} into {Stage} paused: {Code} {Error}; it resumes on the next pass", deliveryId, stage.Name, e.Code, e.Message);
            var paused = await tx.UpdateAsync(d with { ReasonCode = e.Code, Reason = e.Message, UpdatedAt = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow()) }, tx.LastLink, CancellationToken.None).ConfigureAwait(false);
            await tx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            return paused;
        }
        catch (PipelineException e)
        {
            var step = d.Result.Result == StageResults.Promoted ? "deploy" : "verification";
            steps = [new DeployStepResult(step, false, e.Code, e.Message, new Dictionary<string, string> { ["detail"] = e.Message })];
            result = StageResults.Failed;
        }

        return await RecordDeploymentAsync(tx, stage, steps, result, ct).ConfigureAwait(false);
    }

    private async Task<DeliveryLifecycle> RecordDeploymentAsync(LifecycleTransaction tx, StageDefinition stage, IReadOnlyList<DeployStepResult> steps, string result, CancellationToken _)
    {
        // The environment has changed already: recording it is not cancelled halfway.
        var ct = CancellationToken.None;
        var d = tx.Current;
        var link = tx.LastLink;
        var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
        var current = d;
        foreach (var s in steps)
        {
            var evidence = new Dictionary<string, string>(s.Evidence, StringComparer.Ordinal)
            {
                ["stage"] = stage.Name,
                ["environment"] = stage.Environment!.Describe(),
                ["images"] = string.Join(" ", d.Images.Select(i => i.Reference)),
            };
            var type = s.Step == "verification" ? VerificationType : DeploymentType;
            var built = LifecycleAttestations.Build($"{s.Step}:{stage.Name}", type, s.Passed, current, d.Images, link, Actor.Engine.Name, s.Code, s.Reason, evidence, null, now);
            var entry = await _ledger.AppendAsync(built.Record, built.Statement, ct).ConfigureAwait(false);
            link = built.Link;
            current = current with { Result = new StageResult(stage.Name, s.Passed ? s.Step : StageResults.Failed, link, now) };
            _log.Information("Stage {Stage} of {DeliveryId}: {Step} {Verdict} (log {LogIndex})", stage.Name, d.DeliveryId, s.Step, s.Passed ? "passed" : "failed", entry.LogIndex);
        }

        var failed = steps.FirstOrDefault(s => !s.Passed);
        var next = d with
        {
            Result = new StageResult(stage.Name, result, link, now),
            ReasonCode = failed?.Code,
            Reason = failed is null ? null : $"{failed.Step} in {stage.Name} failed: {failed.Reason}",
            UpdatedAt = now,
        };
        var stored = await tx.UpdateAsync(next, link, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (failed is not null)
            _log.Error("Delivery {DeliveryId} ({Pipeline} {Tag}) failed in {Stage}: {Code} {Reason}", d.DeliveryId, d.Pipeline, d.Tag, stage.Name, failed.Code, failed.Reason);
        await CheckpointAsync(ct).ConfigureAwait(false);
        return stored;
    }
}
