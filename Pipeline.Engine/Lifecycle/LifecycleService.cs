using Pipeline.Engine.Approvals;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Vcs;
using Serilog;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// The delivery lifecycle after the intake push: stages, promotion requests, Freigaben,
/// refusals, Rücknahme and supersession. The one API the CLI and the portal call; every method
/// checks the actor's roles and pipelines, every change is a signed statement in the transparency
/// log (subjects: the exact image digests) and a row change under the delivery's row lock and
/// version in PostgreSQL. Refusals are <see cref="LifecycleException"/>s with codes from
/// <see cref="LifecycleErrors"/>.
/// </summary>
public sealed partial class LifecycleService
{
    private readonly LedgerStore _ledger;
    private readonly LifecycleStore _store;
    private IReadOnlyList<PipelineDefinition> _pipelines;
    private readonly StagePlan _engineStages;
    private readonly PromotionStep _promotion;
    private readonly Func<Guid, CancellationToken, Task<string?>> _verifyChain;
    private readonly TimeProvider _time;
    private readonly ILogger _log;

    /// <param name="ledger">The ledger every step is attested in.</param>
    /// <param name="store">The lifecycle tables.</param>
    /// <param name="people">Who may act (from <c>people.file</c>).</param>
    /// <param name="pipelines">The pipeline definitions (their own <c>stages:</c>).</param>
    /// <param name="engineStages">engine.yaml <c>stages:</c>, or null for the default path.</param>
    /// <param name="promotion">Copies images into a stage and moves its tag.</param>
    /// <param name="verifyChain">Checks a delivery's whole chain in the log; null when it verifies, else the first problem.</param>
    public LifecycleService(LedgerStore ledger, LifecycleStore store, PeopleDirectory people, IReadOnlyList<PipelineDefinition> pipelines, StagePlan? engineStages,
        PromotionStep promotion, Func<Guid, CancellationToken, Task<string?>> verifyChain, TimeProvider time, ILogger log)
    {
        _ledger = ledger;
        _store = store;
        People = people;
        _pipelines = pipelines;
        _engineStages = engineStages ?? StagePlan.Default;
        _promotion = promotion;
        _verifyChain = verifyChain;
        _time = time;
        _log = log.ForContext<LifecycleService>();
    }

    /// <summary>The people directory: <c>People.Authenticate(token, channel)</c> turns a bearer token into an <see cref="Actor"/>.</summary>
    public PeopleDirectory People { get; private set; }

    /// <summary>A reloaded people file and pipeline definitions (validated whole by the config watcher) take effect for the next action.</summary>
    internal void Reload(PeopleDirectory people, IReadOnlyList<PipelineDefinition> pipelines)
    {
        _pipelines = pipelines;
        People = people;
    }

    /// <summary>
    /// The stage plan of a pipeline: its own <c>stages:</c>, else the engine's, else the default;
    /// with tenants, every rule raised to the floor of the pipeline's Schutzbedarf (<see cref="ApprovalFloors"/>).
    /// </summary>
    public StagePlan PlanFor(string pipeline)
    {
        var definition = _pipelines.FirstOrDefault(p => p.Name == pipeline);
        var plan = definition?.Stages ?? _engineStages;
        return ApprovalFloors is { } floors && definition?.Schutzbedarf is { } level ? floors.Apply(plan, level) : plan;
    }

    /// <summary>engine.yaml <c>approvalFloors:</c> when tenants are configured; null: every stage's rule as configured.</summary>
    public Tenancy.ApprovalFloors? ApprovalFloors { get; set; }

    /// <summary>engine.yaml <c>tenants:</c>: the <c>tenant</c> label of the promotions metric.</summary>
    public Tenancy.TenantDirectory Tenants { get; set; } = Tenancy.TenantDirectory.Empty;

    /// <summary>
    /// The board: per pipeline (those the actor may act on; auditors and the security team see
    /// all) which version is in which stage and what it waits for.
    /// </summary>
    public async Task<Board> GetBoardAsync(Actor actor, string? pipeline, CancellationToken ct)
    {
        // A pipeline outside the person's tenants is answered like an unknown one: an empty board.
        if (pipeline is not null && InTenants(actor, pipeline)) See(actor, pipeline);
        var all = await _store.ListAsync(pipeline, ct).ConfigureAwait(false);
        var requests = (await _store.RequestsAsync(null, activeOnly: true, ct).ConfigureAwait(false)).ToDictionary(r => r.DeliveryId);
        var names = _pipelines.Select(p => p.Name).Concat(all.Select(a => a.Pipeline)).Distinct().Where(n => pipeline is null || n == pipeline).Where(n => MaySee(actor, n)).Order(StringComparer.Ordinal);
        var columns = new List<BoardPipeline>();
        foreach (var name in names)
        {
            var plan = PlanFor(name);
            var entries = all.Where(d => d.Pipeline == name)
                .OrderByDescending(d => d.Tag, Comparer<string>.Create(VersionOrder.Compare))
                .Select(d => new BoardEntry(d, WaitingFor(d, plan, requests.GetValueOrDefault(d.DeliveryId)), requests.GetValueOrDefault(d.DeliveryId)))
                .ToList();
            columns.Add(new BoardPipeline(name, plan.Stages, entries));
        }

        return new Board(columns, _time.GetUtcNow());
    }

    /// <summary>One delivery's lifecycle (tracked on first sight when it was accepted before the lifecycle existed).</summary>
    /// <exception cref="LifecycleException">LC-UNKNOWN-DELIVERY, LC-PIPELINE-NOT-ALLOWED.</exception>
    public async Task<DeliveryLifecycle> GetAsync(Actor actor, Guid deliveryId, CancellationToken ct)
    {
        var d = await LoadAsync(actor, deliveryId, ct).ConfigureAwait(false);
        See(actor, d.Pipeline);
        return d;
    }

    /// <summary>Every recorded step of a delivery, intake stages first, from the ledger.</summary>
    public async Task<IReadOnlyList<HistoryEvent>> GetHistoryAsync(Actor actor, Guid deliveryId, CancellationToken ct)
    {
        var row = await _ledger.GetDeliveryAsync(deliveryId, ct).ConfigureAwait(false) ?? throw NoDelivery(deliveryId);
        if (!InTenants(actor, row.Pipeline)) throw NoDelivery(deliveryId);
        See(actor, row.Pipeline);
        return (await _ledger.ReadAsync(deliveryId, ct).ConfigureAwait(false))
            .Select(e => new HistoryEvent(e.RecordedAt, e.Record.Stage, e.Record.Verdict == Verdict.Passed ? "passed" : "failed",
                e.Record.Evidence.GetValueOrDefault("actor"), e.Record.Evidence.GetValueOrDefault("detail") ?? e.Record.OutputDigest, e.Record.ReasonCode, e.LogIndex))
            .ToList();
    }

    /// <summary>The approvals recorded for a delivery (counting and void), oldest first.</summary>
    public async Task<IReadOnlyList<ApprovalRecord>> GetApprovalsAsync(Actor actor, Guid deliveryId, CancellationToken ct)
    {
        var d = await GetAsync(actor, deliveryId, ct).ConfigureAwait(false);
        return await _store.ApprovalsAsync(d.DeliveryId, null, ct).ConfigureAwait(false);
    }

    /// <summary>Every request of the actor's pipelines that waits for Freigaben, with what counts and whether the actor may approve it now.</summary>
    public async Task<IReadOnlyList<PendingApproval>> PendingApprovalsAsync(Actor actor, CancellationToken ct)
    {
        var list = new List<PendingApproval>();
        var now = _time.GetUtcNow();
        foreach (var q in await _store.RequestsAsync(null, activeOnly: true, ct).ConfigureAwait(false))
        {
            if (q.Status != PromotionRequestStatus.Open) continue;
            var d = await _store.GetAsync(q.DeliveryId, ct).ConfigureAwait(false);
            if (d is null || !MaySee(actor, d.Pipeline)) continue;
            var stage = PlanFor(d.Pipeline).Find(q.ToStage);
            if (stage is null) continue;
            var approvals = await _store.ApprovalsAsync(d.DeliveryId, q.Id, ct).ConfigureAwait(false);
            var eval = ApprovalRules.Evaluate(stage.Approval, q, d, approvals, now);
            string? whyNot = null;
            try
            {
                var approver = ApprovalRules.CheckApprover(stage.Approval, actor, null, q, d.Pipeline);
                if (eval.Counted.Any(a => a.Approver == approver.Name)) whyNot = $"{LifecycleErrors.AlreadyDecided}: you approved already";
            }
            catch (LifecycleException e)
            {
                whyNot = $"{e.Code}: {e.Message}";
            }

            list.Add(new PendingApproval(d, q, stage, eval.Counted, eval.Missing, whyNot is null, whyNot));
        }

        return list;
    }

    /// <summary>What a delivery waits for, in words, or null when it waits for nothing.</summary>
    private static string? WaitingFor(DeliveryLifecycle d, StagePlan plan, PromotionRequest? q)
    {
        var next = d.StageIndex + 1 < plan.Stages.Count ? plan.Stages[d.StageIndex + 1] : null;
        if (d.State is LifecycleState.InStage or LifecycleState.Final && StageBlock(d, plan) is { } blocked) return $"{blocked.Code}: {blocked.Message}";
        return d.State switch
        {
            LifecycleState.Accepted or LifecycleState.InStage when next is not null => $"a promotion request into {next.Name}",
            LifecycleState.AwaitingApproval when q is not null && plan.Find(q.ToStage) is { } s =>
                $"Freigabe into {s.Name} by {s.Approval.Approvers} × {s.Approval.Role.ToString().ToLowerInvariant()}" + (s.Approval.RequireSignature ? " (signed)" : "") + $", requested by {q.RequestedBy}",
            LifecycleState.Promoting => $"the copy into {d.TargetStage} (approved; resumes on the next pass" + (q?.LastError is { } e ? $"; last error: {e}" : "") + ")",
            _ => null,
        };
    }

    /// <summary>
    /// The delivery's lifecycle as <paramref name="actor"/> may know it: a delivery outside the
    /// actor's tenants is refused exactly like an unknown id (same code, same message), before
    /// anything else about it is looked at or said.
    /// </summary>
    private async Task<DeliveryLifecycle> LoadAsync(Actor actor, Guid deliveryId, CancellationToken ct)
    {
        if (await _store.GetAsync(deliveryId, ct).ConfigureAwait(false) is { } d)
            return InTenants(actor, d.Pipeline) ? d : throw NoDelivery(deliveryId);
        var row = await _ledger.GetDeliveryAsync(deliveryId, ct).ConfigureAwait(false) ?? throw NoDelivery(deliveryId);
        if (!InTenants(actor, row.Pipeline)) throw NoDelivery(deliveryId);
        if (row.Status != DeliveryStatus.Accepted)
            throw new LifecycleException(LifecycleErrors.NotAccepted, $"delivery {deliveryId} ({row.Pipeline} {row.Tag}) was not accepted by the intake ({row.Status.ToString().ToLowerInvariant()}{(row.ReasonCode is null ? "" : ": " + row.ReasonCode)}); only accepted deliveries have a lifecycle");
        return await TrackAsync(row, ct).ConfigureAwait(false);
    }

    /// <summary>Starts the lifecycle of an accepted delivery: its pushed images and the intake result (the signed push statement).</summary>
    private async Task<DeliveryLifecycle> TrackAsync(DeliveryRow row, CancellationToken ct)
    {
        var images = (row.Image ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(DeliveryImage.Parse).ToList();
        if (images.Count == 0)
            throw new LifecycleException(LifecycleErrors.NotAccepted, $"delivery {row.Id} pushed no image; there is nothing to promote");
        var push = (await _ledger.ReadAsync(row.Id, ct).ConfigureAwait(false)).LastOrDefault(e => e.Record.Stage == "push" && e.Record.Verdict == Verdict.Passed)
                   ?? throw new LifecycleException(LifecycleErrors.ChainBroken, $"delivery {row.Id} has no passed push in the ledger");
        var result = push.EntryHash;
        if (push.LogIndex is { } index && await _ledger.Log.GetLeafAsync(index, ct).ConfigureAwait(false) is { } leaf)
            result = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(leaf.Envelope));
        var at = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
        var d = new DeliveryLifecycle(row.Id, row.Pipeline, row.Tag, LifecycleState.Accepted, -1, null, null, new StageResult("intake", "pushed", result, push.RecordedAt),
            images, null, null, 0, at);
        await _store.InsertAsync(d, "", ct).ConfigureAwait(false);
        return (await _store.GetAsync(row.Id, ct).ConfigureAwait(false))!;
    }

    /// <summary>The answer to an unknown delivery id, and to one outside the actor's tenants (no existence oracle).</summary>
    internal static LifecycleException NoDelivery(Guid deliveryId) =>
        new(LifecycleErrors.UnknownDelivery, $"no delivery {deliveryId}; 'pipeline status' lists the deliveries");

    /// <summary>Inside the actor's tenants (the engine, and everyone without tenants: always).</summary>
    private static bool InTenants(Actor actor, string pipeline) => actor.Person is not { } p || p.InTenantScope(pipeline);

    /// <summary>Auditors and the security team see every pipeline of their tenants; others the pipelines they may act on.</summary>
    private static bool MaySee(Actor actor, string pipeline) =>
        actor.Person is not { } p || (p.InTenantScope(pipeline) && (p.MayActOn(pipeline) || p.Has(Role.Auditor) || p.Has(Role.Sicherheitsteam)));

    private static void See(Actor actor, string pipeline)
    {
        if (!MaySee(actor, pipeline))
            throw new LifecycleException(LifecycleErrors.PipelineNotAllowed, $"{actor.Name} may not see or act on pipeline '{pipeline}' (people file: pipelines {string.Join(", ", actor.Person!.Pipelines)})");
    }

    /// <summary>The actor must be a person allowed on the pipeline with one of <paramref name="roles"/> (the engine may always).</summary>
    private static void Require(Actor actor, string pipeline, string what, params Role[] roles)
    {
        if (actor.Person is not { } p) return;
        if (!p.MayActOn(pipeline))
            throw new LifecycleException(LifecycleErrors.PipelineNotAllowed, $"{p.Name} may not act on pipeline '{pipeline}' (people file: pipelines {string.Join(", ", p.Pipelines)})");
        if (!roles.Any(p.Has))
            throw new LifecycleException(LifecycleErrors.WrongRole, $"{what} needs one of the roles {string.Join(", ", roles.Select(r => r.ToString().ToLowerInvariant()))}; {p.Name} has {p.RolesText}");
    }

    /// <summary>A closed delivery refuses every action, with the code naming why.</summary>
    private static void RequireOpen(DeliveryLifecycle d)
    {
        switch (d.State)
        {
            case LifecycleState.Withdrawn:
                throw new LifecycleException(LifecycleErrors.Withdrawn, $"delivery {d.DeliveryId} ({d.Pipeline} {d.Tag}) was withdrawn ({d.Reason}); nothing can be approved or promoted");
            case LifecycleState.Superseded:
                throw new LifecycleException(LifecycleErrors.Superseded, $"delivery {d.DeliveryId} ({d.Pipeline} {d.Tag}) was superseded ({d.Reason}); approve the newer version instead");
            case LifecycleState.Rejected or LifecycleState.Final:
                throw new LifecycleException(LifecycleErrors.Closed, $"delivery {d.DeliveryId} ({d.Pipeline} {d.Tag}) is {LifecycleStore.StateText(d.State)} at {d.StageText}; it goes no further");
        }
    }
}
