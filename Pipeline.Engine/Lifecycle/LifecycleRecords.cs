namespace Pipeline.Engine.Lifecycle;

/// <summary>Where a delivery stands after its intake push.</summary>
public enum LifecycleState
{
    /// <summary>Pushed and accepted by the intake; in no stage yet.</summary>
    Accepted,

    /// <summary>A promotion into the next stage was requested and waits for its Freigabe.</summary>
    AwaitingApproval,

    /// <summary>Approved; the copy into the next stage runs (or resumes after an outage).</summary>
    Promoting,

    /// <summary>In a stage (not the last one); its result is <see cref="DeliveryLifecycle.Result"/>.</summary>
    InStage,

    /// <summary>In the last stage (Produktion): the end of the path.</summary>
    Final,

    /// <summary>A Freigabe was refused: the delivery goes no further.</summary>
    Rejected,

    /// <summary>Taken back (Rücknahme) with a reason.</summary>
    Withdrawn,

    /// <summary>A newer version of the same pipeline was accepted before this one reached the last stage.</summary>
    Superseded,
}

/// <summary>One image of a delivery in one place: registry host, repository and the exact digest (the index digest for multi-platform images).</summary>
public sealed record DeliveryImage(string Registry, string Repository, string Digest)
{
    public string Reference => $"{Registry}/{Repository}@{Digest}";

    /// <summary>Parses <c>host[:port]/repo/path@sha256:…</c> (what the push stage records).</summary>
    public static DeliveryImage Parse(string reference)
    {
        var at = reference.LastIndexOf('@');
        var slash = reference.IndexOf('/');
        if (at <= 0 || slash <= 0 || slash > at)
            throw new PipelineException(LifecycleErrors.Internal, $"'{reference}' is not a registry/repository@digest reference");
        return new DeliveryImage(reference[..slash], reference[(slash + 1)..at], reference[(at + 1)..]);
    }
}

/// <summary>
/// The result of the stage a delivery is in. For this round a stage's result is its promotion
/// (<c>promoted</c>); deployment and verification (issue 11) add results to the same record. The
/// digest is the SHA-256 of the signed statement that recorded it: approvals bind to it, so an
/// approval given before the result changed is void.
/// </summary>
public sealed record StageResult(string Stage, string Result, string Digest, DateTimeOffset At);

/// <summary>A delivery's lifecycle as stored (one row per accepted delivery).</summary>
/// <param name="StageIndex">-1 for the intake (not yet in a stage), else the index in the pipeline's stage plan.</param>
/// <param name="Stage">The current stage's name (null: intake).</param>
/// <param name="TargetStage">The stage a pending request or running promotion leads into.</param>
/// <param name="Result">The current stage's result (the intake push for an accepted delivery).</param>
/// <param name="Images">The delivery's images where they are now (the current stage's registry and repositories).</param>
/// <param name="Version">Incremented on every change (optimistic concurrency).</param>
public sealed record DeliveryLifecycle(
    Guid DeliveryId,
    string Pipeline,
    string Tag,
    LifecycleState State,
    int StageIndex,
    string? Stage,
    string? TargetStage,
    StageResult Result,
    IReadOnlyList<DeliveryImage> Images,
    string? ReasonCode,
    string? Reason,
    long Version,
    DateTimeOffset UpdatedAt)
{
    /// <summary>The image digests (sorted, distinct): what an approval must name.</summary>
    public IReadOnlyList<string> Digests => Images.Select(i => i.Digest).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>No further step is possible (final, rejected, withdrawn, superseded).</summary>
    public bool IsClosed => State is LifecycleState.Final or LifecycleState.Rejected or LifecycleState.Withdrawn or LifecycleState.Superseded;

    public string StageText => Stage ?? "intake";
}

public enum PromotionRequestStatus
{
    /// <summary>Waiting for its Freigabe.</summary>
    Open,

    /// <summary>Approved; the copy runs or waits to be resumed.</summary>
    Approved,

    /// <summary>Done: the delivery is in the target stage.</summary>
    Promoted,

    /// <summary>A Freigabe was refused.</summary>
    Rejected,

    /// <summary>Void: the delivery was withdrawn or superseded while the request was open.</summary>
    Void,
}

/// <summary>A request to move a delivery from its stage into the next one.</summary>
/// <param name="LastError">The last promotion failure (registry outage), kept until a retry succeeds.</param>
public sealed record PromotionRequest(
    Guid Id,
    Guid DeliveryId,
    string? FromStage,
    string ToStage,
    string RequestedBy,
    DateTimeOffset RequestedAt,
    PromotionRequestStatus Status,
    string? LastError);

public enum ApprovalDecision
{
    Approve,
    Reject,
}

/// <summary>
/// One Freigabe (or refusal) as recorded: who gave it, who entered it (on behalf), what exactly it
/// names, and whether it carried the approver's own signature.
/// </summary>
/// <param name="Approver">The person whose Freigabe this is (counts for the rule).</param>
/// <param name="EnteredBy">Who entered it when that is someone else (a Systempfleger:in on behalf), else null.</param>
/// <param name="Digests">The exact image digests approved (sorted).</param>
/// <param name="StageResultDigest">The current stage's result the approval was given on.</param>
/// <param name="SignatureKey">Fingerprint of the approver's key when the approval is signed.</param>
/// <param name="Channel">How it was entered: cli, portal, api.</param>
/// <param name="LogIndex">The transparency-log entry that attests it.</param>
/// <param name="VoidReason">Why it no longer counts (digests or stage result changed, expired), or null while it counts.</param>
public sealed record ApprovalRecord(
    Guid Id,
    Guid DeliveryId,
    Guid RequestId,
    string? FromStage,
    string ToStage,
    string Approver,
    string? EnteredBy,
    ApprovalDecision Decision,
    string? Comment,
    DateTimeOffset GivenAt,
    IReadOnlyList<string> Digests,
    string StageResultDigest,
    string? SignatureKey,
    string Channel,
    long? LogIndex,
    string? VoidReason)
{
    public bool Signed => SignatureKey is not null;
}

/// <summary>
/// What an approver sends: the delivery, the stage it is to enter, the exact digests (null: the
/// delivery's current digests, shown to the approver first), a comment, an optional "on behalf of"
/// and an optional signature over the canonical approval statement.
/// </summary>
public sealed record ApprovalInput(Guid DeliveryId, string Stage, IReadOnlyList<string>? Digests, string? Comment, string? OnBehalfOf, SignedApproval? Signature);

/// <summary>
/// The approver's own signature: <paramref name="Statement"/> is the canonical approval statement
/// exactly as signed (see <see cref="Approvals.ApprovalStatement"/>), <paramref name="Signature"/>
/// an armored sshsig (namespace <c>pipeline-freigabe</c>) or OpenPGP detached signature.
/// </summary>
public sealed record SignedApproval(byte[] Statement, string Signature);

/// <summary>The answer to an approval or refusal.</summary>
/// <param name="RuleComplete">This approval completed the stage's rule (the promotion ran, or is resumed on the next pass).</param>
/// <param name="Missing">How many more distinct approvers are needed (0 when complete).</param>
/// <param name="PromotionError">When the rule completed but the copy failed (registry outage): its code and message; the next pass or <c>pipeline promote --resume</c> completes it.</param>
public sealed record ApprovalOutcome(ApprovalRecord Approval, bool RuleComplete, int Missing, DeliveryLifecycle Delivery, string? PromotionError);

/// <summary>One request waiting for Freigaben, as an approver sees it.</summary>
/// <param name="Counted">Approvals that count now (valid, distinct people, not the requester).</param>
/// <param name="Missing">How many more are needed.</param>
/// <param name="ActorMayApprove">Whether the asking person could approve it now (role, pipeline, four eyes, not already counted).</param>
/// <param name="WhyNot">When not: the code and reason.</param>
public sealed record PendingApproval(
    DeliveryLifecycle Delivery,
    PromotionRequest Request,
    StageDefinition Stage,
    IReadOnlyList<ApprovalRecord> Counted,
    int Missing,
    bool ActorMayApprove,
    string? WhyNot);

/// <summary>One delivery on the board, with what it waits for in words.</summary>
public sealed record BoardEntry(DeliveryLifecycle Delivery, string? WaitingFor, PromotionRequest? OpenRequest);

/// <summary>One pipeline's column of the board: its stages in order and its deliveries, newest first.</summary>
public sealed record BoardPipeline(string Pipeline, IReadOnlyList<StageDefinition> Stages, IReadOnlyList<BoardEntry> Deliveries);

/// <summary>The board: per pipeline which version is in which stage and what waits for whom.</summary>
public sealed record Board(IReadOnlyList<BoardPipeline> Pipelines, DateTimeOffset At);

/// <summary>One entry of a delivery's history, from the ledger (intake stages and every lifecycle step).</summary>
/// <param name="Step">fetch, verify, …, push, then promote:STAGE, freigabe:STAGE, reject:STAGE, withdraw, supersede.</param>
/// <param name="Actor">Who did it (for lifecycle steps), with "for X" when entered on behalf.</param>
public sealed record HistoryEvent(DateTimeOffset At, string Step, string Verdict, string? Actor, string? Detail, string? ReasonCode, long? LogIndex);
