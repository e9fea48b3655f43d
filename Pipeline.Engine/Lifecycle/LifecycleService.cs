using Pipeline.Engine.Approvals;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Serilog;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// The delivery lifecycle after the intake push: stages, promotion requests, Freigaben,
/// refusals, Rücknahme and supersession. The one API the CLI and the portal call; every method
/// checks the actor's roles and pipelines, every change is a signed statement in the transparency
/// log (subjects: the exact image digests) and a row change under optimistic concurrency in
/// PostgreSQL. Refusals are <see cref="LifecycleException"/>s with codes from <see cref="LifecycleErrors"/>.
/// </summary>
public sealed partial class LifecycleService
{
    private readonly LedgerStore _ledger;
    private readonly LifecycleStore _store;
    private readonly Func<string, StagePlan> _planFor;
    private readonly PromotionStep _promotion;
    private readonly Func<Guid, CancellationToken, Task<string?>> _verifyChain;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    /// <param name="ledger">The ledger every step is attested in.</param>
    /// <param name="store">The lifecycle tables.</param>
    /// <param name="people">Who may act (from <c>people.file</c>).</param>
    /// <param name="planFor">The stage plan of a pipeline (its own <c>stages:</c>, else the engine's, else the default).</param>
    /// <param name="promotion">Copies images into a stage and moves its tag.</param>
    /// <param name="verifyChain">Checks a delivery's whole chain in the log; returns null when it verifies, else the first problem.</param>
    public LifecycleService(LedgerStore ledger, LifecycleStore store, PeopleDirectory people, Func<string, StagePlan> planFor, PromotionStep promotion,
        Func<Guid, CancellationToken, Task<string?>> verifyChain, TimeProvider time, ILogger log)
    {
        _ledger = ledger;
        _store = store;
        People = people;
        _planFor = planFor;
        _promotion = promotion;
        _verifyChain = verifyChain;
        _time = time;
        _log = log.ForContext<LifecycleService>();
    }

    /// <summary>The people directory: <c>People.Authenticate(token, channel)</c> turns a bearer token into an <see cref="Actor"/>.</summary>
    public PeopleDirectory People { get; }

    /// <summary>The stage plan of a pipeline.</summary>
    public StagePlan PlanFor(string pipeline) => _planFor(pipeline);

    /// <summary>
    /// The board: per pipeline (only those the actor may act on; auditors and the security team see
    /// all) which version is in which stage and what it waits for.
    /// </summary>
    public partial Task<Board> GetBoardAsync(Actor actor, string? pipeline, CancellationToken ct);

    /// <summary>One delivery's lifecycle.</summary>
    /// <exception cref="LifecycleException">LC-UNKNOWN-DELIVERY, LC-PIPELINE-NOT-ALLOWED.</exception>
    public partial Task<DeliveryLifecycle> GetAsync(Actor actor, Guid deliveryId, CancellationToken ct);

    /// <summary>Every recorded step of a delivery, intake stages first, from the ledger.</summary>
    public partial Task<IReadOnlyList<HistoryEvent>> GetHistoryAsync(Actor actor, Guid deliveryId, CancellationToken ct);

    /// <summary>Every approval request the actor's pipelines have open, with what counts and whether the actor may approve.</summary>
    public partial Task<IReadOnlyList<PendingApproval>> PendingApprovalsAsync(Actor actor, CancellationToken ct);

    /// <summary>The approvals recorded for a delivery (valid and void), oldest first.</summary>
    public partial Task<IReadOnlyList<ApprovalRecord>> GetApprovalsAsync(Actor actor, Guid deliveryId, CancellationToken ct);

    /// <summary>
    /// Requests the promotion of a delivery into <paramref name="toStage"/>, which must be the next
    /// stage (none can be skipped). When that stage's rule is automatic (first stage only) the
    /// promotion runs at once. Roles: systempfleger, verfahrensverantwortlich or betrieb on the pipeline.
    /// </summary>
    /// <exception cref="LifecycleException">LC-STAGE-SKIPPED, LC-UNKNOWN-STAGE, LC-REQUEST-OPEN, LC-DELIVERY-*, LC-WRONG-ROLE, LC-PIPELINE-NOT-ALLOWED, LC-CHAIN-BROKEN.</exception>
    public partial Task<PromotionRequest> RequestPromotionAsync(Actor actor, Guid deliveryId, string toStage, CancellationToken ct);

    /// <summary>
    /// Records a Freigabe for the open request into <see cref="ApprovalInput.Stage"/>. When it
    /// completes the stage's rule, the promotion runs (copy by digest with referrers, then the
    /// stage tag); a registry outage leaves it approved and resumable (<see cref="ApprovalOutcome.PromotionError"/>).
    /// </summary>
    /// <exception cref="LifecycleException">LC-WRONG-ROLE, LC-OWN-REQUEST, LC-DIGEST-MISMATCH, LC-DELIVERY-WITHDRAWN, LC-DELIVERY-SUPERSEDED, LC-NOT-AWAITING, LC-SIGNATURE-*, LC-APPROVAL-EXPIRED, LC-ON-BEHALF-NOT-ALLOWED, LC-UNKNOWN-PERSON, ….</exception>
    public partial Task<ApprovalOutcome> ApproveAsync(Actor actor, ApprovalInput input, CancellationToken ct);

    /// <summary>Refuses the Freigabe (a comment is required): the request closes and the delivery is rejected at its current stage. Same checks as <see cref="ApproveAsync"/>.</summary>
    public partial Task<ApprovalOutcome> RejectAsync(Actor actor, ApprovalInput input, CancellationToken ct);

    /// <summary>Rücknahme from any stage with a reason (systempfleger, verfahrensverantwortlich or sicherheitsteam): pending approvals become void.</summary>
    public partial Task<DeliveryLifecycle> WithdrawAsync(Actor actor, Guid deliveryId, string reason, CancellationToken ct);

    /// <summary>
    /// The canonical statement the actor (or the person they act for) would sign for this
    /// approval or refusal now: the bytes for <c>ssh-keygen -Y sign -n pipeline-freigabe</c>.
    /// </summary>
    public partial Task<ApprovalStatement> ApprovalStatementAsync(Actor actor, ApprovalInput input, ApprovalDecision decision, CancellationToken ct);

    /// <summary>
    /// Called by the intake when a delivery is accepted: tracks it, supersedes older not-yet-final
    /// deliveries of the same pipeline, and runs the first stage when it is automatic.
    /// Never throws for lifecycle problems (they are logged and visible on the board): the intake's
    /// verdict stands.
    /// </summary>
    public partial Task<DeliveryLifecycle?> OnAcceptedAsync(PipelineDefinition definition, DeliveryReport report, CancellationToken ct);

    /// <summary>
    /// Completes every approved promotion that did not finish (crash, registry outage), exactly
    /// once each; called by every pipeline pass, the daemon, and <c>pipeline promote --resume</c>.
    /// </summary>
    public partial Task<IReadOnlyList<DeliveryLifecycle>> ResumeAsync(string? pipeline, CancellationToken ct);
}
