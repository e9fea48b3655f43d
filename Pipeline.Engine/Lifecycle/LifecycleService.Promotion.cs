using Pipeline.Engine.Approvals;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Lifecycle;

public sealed partial class LifecycleService
{
    /// <summary>
    /// Called by the intake when a delivery is accepted: tracks it, supersedes older
    /// not-yet-final deliveries of the same pipeline, and runs the first stage when it is automatic.
    /// Never throws for lifecycle problems (they are logged and visible on the board): the intake's
    /// verdict stands.
    /// </summary>
    public async Task<DeliveryLifecycle?> OnAcceptedAsync(PipelineDefinition definition, DeliveryReport report, CancellationToken ct)
    {
        if (report.Status != DeliveryStatus.Accepted) return null;
        try
        {
            var d = await LoadAsync(Actor.Engine, report.DeliveryId, ct).ConfigureAwait(false);
            foreach (var older in await _store.ListAsync(definition.Name, ct).ConfigureAwait(false))
            {
                if (older.DeliveryId == d.DeliveryId || older.IsClosed || VersionOrder.Compare(older.Tag, d.Tag) >= 0) continue;
                await CloseAsync(older.DeliveryId, Actor.Engine, LifecycleState.Superseded, "supersession", "LC-SUPERSEDED",
                    $"superseded by {d.Tag} (delivery {d.DeliveryId})", ct).ConfigureAwait(false);
            }

            var first = PlanFor(definition.Name).Stages[0];
            if (first.Approval.Automatic)
                await RequestPromotionAsync(Actor.Engine, d.DeliveryId, first.Name, ct).ConfigureAwait(false);
            return await _store.GetAsync(d.DeliveryId, ct).ConfigureAwait(false);
        }
        catch (LifecycleException e)
        {
            _log.Error("Lifecycle of accepted delivery {DeliveryId} ({Pipeline} {Tag}): {Code} {Error}", report.DeliveryId, report.Pipeline, report.Tag, e.Code, e.Message);
            return await _store.GetAsync(report.DeliveryId, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Completes every approved promotion that did not finish (crash, registry outage), exactly
    /// once each; called by every pipeline pass, the daemon, and <c>pipeline promote --resume</c>.
    /// </summary>
    public async Task<IReadOnlyList<DeliveryLifecycle>> ResumeAsync(string? pipeline, CancellationToken ct)
    {
        var done = new List<DeliveryLifecycle>();
        foreach (var id in await _store.PromotingAsync(pipeline, ct).ConfigureAwait(false))
        {
            var (d, error) = await ExecutePromotionAsync(id, ct).ConfigureAwait(false);
            if (error is null) done.Add(d);
        }

        done.AddRange(await ResumeDeploymentsAsync(pipeline, ct).ConfigureAwait(false));
        return done;
    }

    /// <summary>
    /// Runs an approved promotion under the delivery's row lock (so it completes exactly once even
    /// when two engines resume it together): verify the chain, copy, verify, tag, then record the
    /// stage result. A failure (chain broken, placement refused, registry outage, unverified copy) keeps it approved
    /// with the error and is recorded as a signed failed statement once per failure episode
    /// (<see cref="RecordPromotionFailureAsync"/>); returns it.
    /// </summary>
    private async Task<(DeliveryLifecycle Delivery, string? Error)> ExecutePromotionAsync(Guid deliveryId, CancellationToken ct)
    {
        await using var tx = await LockOrThrowAsync(deliveryId, ct).ConfigureAwait(false);
        var d = tx.Current;
        if (d.State != LifecycleState.Promoting) return (d, null);
        var request = await tx.ActiveRequestAsync(ct).ConfigureAwait(false)
                      ?? throw new LifecycleException(LifecycleErrors.Internal, $"delivery {deliveryId} is promoting but has no approved request");
        var plan = PlanFor(d.Pipeline);
        var to = plan.Find(request.ToStage) ?? throw UnknownStage(request.ToStage, plan);
        var from = d.StageIndex >= 0 ? plan.Stages[d.StageIndex] : null;

        if (await _verifyChain(deliveryId, ct).ConfigureAwait(false) is { } problem)
        {
            await RecordPromotionFailureAsync(tx, request, from, to, LifecycleErrors.ChainBroken, problem, ct).ConfigureAwait(false);
            _log.Error("SECURITY EVENT {Code}: delivery {DeliveryId} was not promoted into {Stage}: its chain does not verify: {Problem}", LifecycleErrors.ChainBroken, deliveryId, to.Name, problem);
            return (d, $"{LifecycleErrors.ChainBroken}: {problem}");
        }

        // Placement again, before anything is copied: the stage environments or the tenant directory may have changed
        // (a reload) between the request and the Freigabe. Refused, nothing reaches the stage's registry.
        if (_pipelines.FirstOrDefault(p => p.Name == d.Pipeline) is { } definition && Deployment?.PlacementRefusal(definition, to) is { } refused)
        {
            var message = $"{d.Pipeline} {d.Tag} may not be promoted into {to.Name}: {refused.Message}";
            await RecordPromotionFailureAsync(tx, request, from, to, refused.Code!, message, CancellationToken.None).ConfigureAwait(false);
            return (d, $"{refused.Code}: {message}");
        }

        PromotionOutcome outcome;
        try
        {
            outcome = await _promotion.PromoteAsync(d, from, to, ct).ConfigureAwait(false);
        }
        catch (LifecycleException e)
        {
            await RecordPromotionFailureAsync(tx, request, from, to, e.Code, e.Message, CancellationToken.None).ConfigureAwait(false);
            return (d, $"{e.Code}: {e.Message}");
        }

        var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
        var evidence = new Dictionary<string, string>(outcome.Evidence, StringComparer.Ordinal)
        {
            ["fromStage"] = d.StageText,
            ["toStage"] = to.Name,
            ["result"] = "promoted",
            ["detail"] = $"promoted into {to.Name}: {string.Join(" ", outcome.Images.Select(i => i.Reference))}",
        };
        var step = LifecycleAttestations.Build($"promotion:{to.Name}", LifecycleAttestations.PromotionType, true, d, outcome.Images, tx.LastLink, Actor.Engine.Name, null, null, evidence, null, now);
        var entry = await tx.AppendAsync(_ledger, step.Record, step.Statement, ct).ConfigureAwait(false);
        var final = plan.IndexOf(to) == plan.Stages.Count - 1;
        var next = d with
        {
            State = final ? LifecycleState.Final : LifecycleState.InStage,
            StageIndex = plan.IndexOf(to),
            Stage = to.Name,
            TargetStage = null,
            Images = outcome.Images,
            Result = new StageResult(to.Name, "promoted", step.Link, now),
            UpdatedAt = now,
        };
        await tx.SetRequestStatusAsync(request.Id, PromotionRequestStatus.Promoted, null, ct).ConfigureAwait(false);
        var stored = await tx.UpdateAsync(next, step.Link, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        Observability.EngineMetrics.Promoted(Observability.EngineMetrics.TenantOf(Tenants, d.Pipeline), d.Pipeline, to.Name);
        _log.Information("Delivery {DeliveryId} ({Pipeline} {Tag}) is in {Stage} (log {LogIndex})", deliveryId, d.Pipeline, d.Tag, to.Name, entry.LogIndex);
        await CheckpointAsync(ct).ConfigureAwait(false);
        await AttachPromotionStatementAsync(to, outcome.Images, entry, ct).ConfigureAwait(false);
        if (to.Environment is not null && Deployment is not null) stored = await DeployStageAsync(deliveryId, ct).ConfigureAwait(false);
        return (stored, null);
    }

    /// <summary>Supersedes (a Rücknahme is <see cref="WithdrawAsync"/>): a failed statement with the reason, open requests and approvals void, in one transaction.</summary>
    private async Task<DeliveryLifecycle> CloseAsync(Guid deliveryId, Actor actor, LifecycleState state, string step, string code, string reason, CancellationToken ct)
    {
        await using var tx = await LockOrThrowAsync(deliveryId, ct).ConfigureAwait(false);
        var d = tx.Current;
        RequireOpen(d);
        var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
        var built = LifecycleAttestations.Build(step, LifecycleAttestations.LifecycleType, false, d, d.Images, tx.LastLink, actor.Name, code, reason,
            new Dictionary<string, string> { ["channel"] = actor.Channel, ["detail"] = reason, ["atStage"] = d.StageText }, null, now);
        await tx.AppendAsync(_ledger, built.Record, built.Statement, ct).ConfigureAwait(false);
        await tx.VoidApprovalsAsync(reason, ct).ConfigureAwait(false);
        var stored = await tx.UpdateAsync(d with { State = state, TargetStage = null, ReasonCode = code, Reason = reason, UpdatedAt = now }, built.Link, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        _log.Information("Delivery {DeliveryId} ({Pipeline} {Tag}) {State}: {Reason}", deliveryId, d.Pipeline, d.Tag, LifecycleStore.StateText(state), reason);
        await CheckpointAsync(ct).ConfigureAwait(false);
        return stored;
    }

    /// <summary>Signs a checkpoint after a step, so auditors can prove it at once; a failure is logged (the next step or 'pipeline audit checkpoint' makes one).</summary>
    private async Task CheckpointAsync(CancellationToken ct)
    {
        if (_ledger.Signing is null) return;
        try
        {
            await _ledger.CheckpointAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or PipelineException)
        {
            _log.Error("Could not sign a ledger checkpoint after a lifecycle step: {Error}; run 'pipeline audit checkpoint'", e.Message);
        }
    }
}
