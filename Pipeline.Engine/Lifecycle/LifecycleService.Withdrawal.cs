using Pipeline.Engine.Approvals;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Lifecycle;

public sealed partial class LifecycleService
{
    /// <summary>
    /// Rücknahme with a reason, from any state but withdrawn: accepted, waiting for a Freigabe,
    /// promoting, in any stage including the last (Produktion), rejected or superseded. Under the
    /// delivery's row lock: every stage the delivery entered gets its stage tag back on the previous
    /// version (or loses it when there is none) and the withdrawn image is deleted from the stage
    /// repositories (<see cref="PromotionStep.RetractAsync"/>); then, in one transaction, the signed
    /// withdrawal statement (who, why, what was done to which tag), open requests and approvals void,
    /// and the state withdrawn. Roles: systempfleger, verfahrensverantwortlich or sicherheitsteam.
    /// </summary>
    /// <exception cref="LifecycleException">LC-COMMENT-REQUIRED, LC-DELIVERY-WITHDRAWN, LC-WRONG-ROLE, LC-PIPELINE-NOT-ALLOWED, LC-WITHDRAW-REGISTRY (transient: nothing recorded, run again).</exception>
    public async Task<DeliveryLifecycle> WithdrawAsync(Actor actor, Guid deliveryId, string reason, CancellationToken ct)
    {
        var loaded = await LoadAsync(actor, deliveryId, ct).ConfigureAwait(false);
        Require(actor, loaded.Pipeline, "a Rücknahme", Role.Systempfleger, Role.Verfahrensverantwortlich, Role.Sicherheitsteam);
        if (string.IsNullOrWhiteSpace(reason)) throw new LifecycleException(LifecycleErrors.CommentRequired, "a Rücknahme needs a reason (--reason)");
        var plan = PlanFor(loaded.Pipeline);
        var others = await _store.ListAsync(loaded.Pipeline, ct).ConfigureAwait(false);
        DeliveryLifecycle stored;
        await using (var tx = await LockOrThrowAsync(deliveryId, ct).ConfigureAwait(false))
        {
            var d = tx.Current;
            if (d.State == LifecycleState.Withdrawn)
                throw new LifecycleException(LifecycleErrors.Withdrawn, $"delivery {d.DeliveryId} ({d.Pipeline} {d.Tag}) was withdrawn already ({d.Reason})");
            var retracted = await _promotion.RetractAsync(RetractionsFor(d, plan, others), ct).ConfigureAwait(false);
            var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
            var text = $"withdrawn by {actor.Name}: {reason}";
            var evidence = new Dictionary<string, string>(retracted, StringComparer.Ordinal)
            {
                ["channel"] = actor.Channel,
                ["detail"] = text,
                ["atStage"] = d.StageText,
                ["state"] = LifecycleStore.StateText(d.State),
            };
            var built = LifecycleAttestations.Build("withdrawal", LifecycleAttestations.LifecycleType, false, d, d.Images, tx.LastLink, actor.Name, "LC-WITHDRAWN", text,
                evidence, null, now);
            await tx.AppendAsync(_ledger, built.Record, built.Statement, ct).ConfigureAwait(false);
            await tx.VoidApprovalsAsync(text, ct).ConfigureAwait(false);
            stored = await tx.UpdateAsync(d with { State = LifecycleState.Withdrawn, TargetStage = null, ReasonCode = "LC-WITHDRAWN", Reason = text, UpdatedAt = now },
                built.Link, ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            _log.Information("Delivery {DeliveryId} ({Pipeline} {Tag}) withdrawn at {Stage} by {Actor}: {Reason}; {Retracted}", deliveryId, d.Pipeline, d.Tag, d.StageText,
                actor.Name, reason, retracted.Values);
        }

        await CheckpointAsync(ct).ConfigureAwait(false);
        return stored;
    }

    /// <summary>
    /// Every stage the delivery entered (and the one a promotion may have half-finished), each of
    /// its images there, and the previous version of that image in that stage: the highest older
    /// version of the pipeline, not withdrawn, that entered the stage.
    /// </summary>
    private static List<Retraction> RetractionsFor(DeliveryLifecycle d, StagePlan plan, IReadOnlyList<DeliveryLifecycle> others)
    {
        var list = new List<Retraction>();
        var last = d.State == LifecycleState.Promoting ? Math.Min(d.StageIndex + 1, plan.Stages.Count - 1) : d.StageIndex;
        var versions = Comparer<string>.Create(VersionOrder.Compare);
        var live = others.Where(o => o.DeliveryId != d.DeliveryId && o.State != LifecycleState.Withdrawn).ToList();
        foreach (var image in d.Images)
        {
            var intake = IntakeRepository(image, d, plan);
            for (var i = 0; i <= last; i++)
            {
                var stage = plan.Stages[i];
                var previous = live.Where(o => o.StageIndex >= i && versions.Compare(o.Tag, d.Tag) < 0)
                    .Select(o => (o.Tag, Image: o.Images.FirstOrDefault(x => IntakeRepository(x, o, plan) == intake)))
                    .Where(o => o.Image is not null)
                    .OrderByDescending(o => o.Tag, versions)
                    .FirstOrDefault();
                var shared = live.FirstOrDefault(o => o.StageIndex >= i && o.Images.Any(x => x.Digest == image.Digest && IntakeRepository(x, o, plan) == intake));
                list.Add(new Retraction(stage, stage.RepositoryFor(intake), image.Digest, previous.Tag, previous.Image?.Digest, shared?.Tag));
            }
        }

        return list;
    }

    /// <summary>The intake repository of an image of <paramref name="d"/> (its repository without the current stage's prefix).</summary>
    private static string IntakeRepository(DeliveryImage image, DeliveryLifecycle d, StagePlan plan) =>
        d.StageIndex >= 0 && d.StageIndex < plan.Stages.Count ? PromotionStep.StripPrefix(image.Repository, plan.Stages[d.StageIndex].RepositoryPrefix) : image.Repository;
}
