using Pipeline.Engine.Lifecycle;

namespace Pipeline.Engine.Api;

/// <summary>A stage as the portal shows it: name, tag and the approval rule in words (never its registry credentials or CA paths).</summary>
public sealed record PortalStage(string Name, string Tag, string Rule, string Role, int Approvers, bool RequireSignature, bool Automatic)
{
    public static PortalStage Of(StageDefinition s) =>
        new(s.Name, s.Tag, s.Approval.Describe(), s.Approval.Role.ToString().ToLowerInvariant(), s.Approval.Approvers, s.Approval.RequireSignature, s.Approval.Automatic);
}

/// <summary>A delivery's lifecycle as the portal shows it.</summary>
public sealed record PortalDelivery(
    Guid DeliveryId,
    string Pipeline,
    string Tag,
    string State,
    string Stage,
    string? TargetStage,
    StageResult Result,
    IReadOnlyList<string> Images,
    IReadOnlyList<string> Digests,
    string? ReasonCode,
    string? Reason,
    long Version,
    DateTimeOffset UpdatedAt)
{
    public static PortalDelivery Of(DeliveryLifecycle d) =>
        new(d.DeliveryId, d.Pipeline, d.Tag, LifecycleStore.StateText(d.State), d.StageText, d.TargetStage, d.Result, d.Images.Select(i => i.Reference).ToList(), d.Digests,
            d.ReasonCode, d.Reason, d.Version, d.UpdatedAt);
}

/// <summary>One delivery on the board with what it waits for, in words.</summary>
public sealed record PortalBoardEntry(PortalDelivery Delivery, string? WaitingFor, PromotionRequest? OpenRequest);

/// <summary>One pipeline's row of the board.</summary>
public sealed record PortalBoardPipeline(string Pipeline, IReadOnlyList<PortalStage> Stages, IReadOnlyList<PortalBoardEntry> Deliveries);

/// <summary>The board: per pipeline which version is in which stage and what waits for whom.</summary>
public sealed record PortalBoard(IReadOnlyList<PortalBoardPipeline> Pipelines, DateTimeOffset At)
{
    public static PortalBoard Of(Board b) => new(
        b.Pipelines.Select(p => new PortalBoardPipeline(p.Pipeline, p.Stages.Select(PortalStage.Of).ToList(),
            p.Deliveries.Select(e => new PortalBoardEntry(PortalDelivery.Of(e.Delivery), e.WaitingFor, e.OpenRequest)).ToList())).ToList(),
        b.At);
}

/// <summary>
/// The intake evidence an approver should see next to what they approve: the supplier's tag
/// signer (verify), the scan verdict, and where each image's SBOM is (the SBOM referrer travels
/// with the image into every stage, same digest).
/// </summary>
public sealed record IntakeEvidence(string? Signer, string? SignerKey, string? ScanVerdict, string? ScanDetail, IReadOnlyList<string> Sboms);

/// <summary>One request waiting for Freigaben, with exactly what a Freigabe names.</summary>
public sealed record PortalPending(
    PortalDelivery Delivery,
    PromotionRequest Request,
    PortalStage Stage,
    IReadOnlyList<ApprovalRecord> Counted,
    int Missing,
    bool MayApprove,
    string? WhyNot,
    IntakeEvidence Evidence);

/// <summary>A delivery's page: its lifecycle, every recorded step, every approval, its stage plan and intake evidence.</summary>
public sealed record PortalDeliveryDetail(PortalDelivery Delivery, IReadOnlyList<PortalStage> Stages, IReadOnlyList<HistoryEvent> History, IReadOnlyList<ApprovalRecord> Approvals, IntakeEvidence Evidence);

/// <summary>The answer to an approval or refusal.</summary>
public sealed record PortalDecision(ApprovalRecord Approval, bool RuleComplete, int Missing, PortalDelivery Delivery, string? PromotionError);

/// <summary>Who the token belongs to (the page shows it and offers only what the roles allow).</summary>
/// <param name="Pipelines">The pipelines the person may act on (with tenants: those of their tenants in their list).</param>
/// <param name="Tenants">The tenant ids the person belongs to (<c>"*"</c>: every tenant); empty without tenants.</param>
public sealed record PortalMe(string Name, IReadOnlyList<string> Roles, IReadOnlyList<string> Pipelines, IReadOnlyList<string> Tenants);

/// <summary>Body of <c>POST …/promote</c>.</summary>
public sealed record PromoteBody(string? Stage);

/// <summary>
/// Body of <c>POST …/approve</c>, <c>…/reject</c> and <c>…/statement</c>: the stage to enter, the
/// exact digests the approver saw, a comment, optionally on whose behalf, and optionally the
/// approver's own signature over the statement (base64 statement bytes and the armored signature).
/// </summary>
public sealed record DecisionBody(string? Stage, IReadOnlyList<string>? Digests, string? Comment, string? OnBehalfOf, string? Statement, string? Signature, string? Decision);

/// <summary>Body of <c>POST …/withdraw</c>.</summary>
public sealed record WithdrawBody(string? Reason);

/// <summary>Body of <c>POST /api/portal/pipelines/{name}/run</c> (<c>{}</c>: nothing to choose yet).</summary>
public sealed record RunBody;
