using Pipeline.Engine.Lifecycle;

namespace Pipeline.Engine.Approvals;

/// <summary>The approvals that count for a request now, and how many are still missing.</summary>
/// <param name="Void">Approvals that do not count, each with why (digests or stage result changed, expired, the requester, counted already).</param>
public sealed record RuleEvaluation(IReadOnlyList<ApprovalRecord> Counted, IReadOnlyList<(ApprovalRecord Approval, string Why)> Void, int Missing)
{
    public bool Complete => Missing == 0;
}

/// <summary>
/// The Freigabe rule as pure functions (no database, no clock of its own): who may approve, and
/// which recorded approvals count. Four eyes: the requester never counts; the same person twice
/// counts once; an approval counts only for the exact digests and stage result it names, and only
/// within <see cref="ApprovalRule.ValidFor"/>.
/// </summary>
public static class ApprovalRules
{
    /// <summary>Which approvals of <paramref name="request"/> count at <paramref name="now"/>.</summary>
    public static RuleEvaluation Evaluate(ApprovalRule rule, PromotionRequest request, DeliveryLifecycle delivery, IEnumerable<ApprovalRecord> approvals, DateTimeOffset now)
    {
        var counted = new List<ApprovalRecord>();
        var voided = new List<(ApprovalRecord, string)>();
        foreach (var a in approvals.Where(a => a.RequestId == request.Id && a.Decision == ApprovalDecision.Approve).OrderBy(a => a.GivenAt))
        {
            var why = WhyVoid(rule, request, delivery, a, now);
            if (why is null && counted.Any(c => c.Approver == a.Approver)) why = $"{a.Approver} approved already; the same person counts once";
            if (why is null) counted.Add(a);
            else voided.Add((a, why));
        }

        var needed = rule.Automatic ? 0 : rule.Approvers;
        return new RuleEvaluation(counted, voided, Math.Max(0, needed - counted.Count));
    }

    /// <summary>Why one recorded approval does not count (null: it counts).</summary>
    public static string? WhyVoid(ApprovalRule rule, PromotionRequest request, DeliveryLifecycle delivery, ApprovalRecord a, DateTimeOffset now)
    {
        if (a.VoidReason is not null) return a.VoidReason;
        if (!a.Digests.Order(StringComparer.Ordinal).SequenceEqual(delivery.Digests))
            return $"it names digests {string.Join(", ", a.Digests)}, the delivery's are now {string.Join(", ", delivery.Digests)}";
        if (a.StageResultDigest != delivery.Result.Digest)
            return $"the result of stage {delivery.StageText} changed since it was given ({a.StageResultDigest} → {delivery.Result.Digest})";
        if (rule.ValidFor is { } valid && a.GivenAt + valid < now)
            return $"it expired at {ApprovalStatement.Time(a.GivenAt + valid)} (valid {Durations.Format(valid)})";
        if (rule.FourEyes && a.Approver == request.RequestedBy)
            return $"{a.Approver} requested this promotion; four eyes: the requester never counts";
        return null;
    }

    /// <summary>
    /// Who is approving: the actor, or the person they enter it for. Throws with the cause when
    /// the actor (or that person) may not: pipeline, role, on-behalf, four eyes.
    /// </summary>
    public static Person CheckApprover(ApprovalRule rule, Actor actor, Person? onBehalfOf, PromotionRequest request, string pipeline)
    {
        var entering = actor.Person ?? throw new LifecycleException(LifecycleErrors.NotAuthenticated, "an approval needs an authenticated person");
        if (!entering.MayActOn(pipeline))
            throw new LifecycleException(LifecycleErrors.PipelineNotAllowed, $"{entering.Name} may not act on pipeline '{pipeline}' (people file: pipelines {string.Join(", ", entering.Pipelines)})");
        var approver = entering;
        if (onBehalfOf is not null && onBehalfOf.Name != entering.Name)
        {
            if (!rule.OnBehalf)
                throw new LifecycleException(LifecycleErrors.OnBehalfNotAllowed, $"the rule of stage {request.ToStage} does not allow approvals entered on behalf of someone else; {onBehalfOf.Name} must approve personally");
            if (!entering.Has(Role.Systempfleger))
                throw new LifecycleException(LifecycleErrors.OnBehalfNotAllowed, $"only a systempfleger may enter a Freigabe on behalf of someone else; {entering.Name} has roles {entering.RolesText}");
            if (!onBehalfOf.MayActOn(pipeline))
                throw new LifecycleException(LifecycleErrors.PipelineNotAllowed, $"{onBehalfOf.Name} may not act on pipeline '{pipeline}' (people file: pipelines {string.Join(", ", onBehalfOf.Pipelines)})");
            approver = onBehalfOf;
        }

        if (!approver.Has(rule.Role))
            throw new LifecycleException(LifecycleErrors.WrongRole,
                $"a Freigabe into {request.ToStage} needs the role {rule.Role.ToString().ToLowerInvariant()}; {approver.Name} has {approver.RolesText}");
        if (rule.FourEyes && approver.Name == request.RequestedBy)
            throw new LifecycleException(LifecycleErrors.OwnRequest,
                $"{approver.Name} requested this promotion into {request.ToStage} and cannot approve it (four eyes); another {rule.Role.ToString().ToLowerInvariant()} must approve");
        return approver;
    }
}
