using Pipeline.Engine.Approvals;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Lifecycle;

public sealed partial class LifecycleService
{
    /// <summary>
    /// Requests the promotion of a delivery into <paramref name="toStage"/>, which must be the next
    /// stage (none can be skipped) of an accepted delivery whose chain verifies in the log. When
    /// the stage's rule is automatic (first stage only) the promotion runs at once.
    /// Roles: systempfleger, verfahrensverantwortlich or betrieb on the pipeline.
    /// </summary>
    /// <exception cref="LifecycleException">LC-STAGE-SKIPPED, LC-UNKNOWN-STAGE, LC-REQUEST-OPEN, LC-DELIVERY-*, LC-WRONG-ROLE, LC-PIPELINE-NOT-ALLOWED, LC-CHAIN-BROKEN.</exception>
    public async Task<PromotionRequest> RequestPromotionAsync(Actor actor, Guid deliveryId, string toStage, CancellationToken ct)
    {
        var loaded = await LoadAsync(actor, deliveryId, ct).ConfigureAwait(false);
        Require(actor, loaded.Pipeline, "requesting a promotion", Role.Systempfleger, Role.Verfahrensverantwortlich, Role.Betrieb);
        var plan = PlanFor(loaded.Pipeline);
        var to = plan.Find(toStage) ?? throw UnknownStage(toStage, plan);
        RequireOpen(loaded);
        CheckNext(loaded, plan, to);
        if (_pipelines.FirstOrDefault(p => p.Name == loaded.Pipeline) is { } definition && Deployment?.PlacementRefusal(definition, to) is { } refused)
            throw new LifecycleException(refused.Code!, $"{loaded.Pipeline} {loaded.Tag} may not be promoted into {to.Name}: {refused.Message}");
        if (await _verifyChain(deliveryId, ct).ConfigureAwait(false) is { } problem)
            throw new LifecycleException(LifecycleErrors.ChainBroken, $"delivery {deliveryId} cannot be promoted: its chain does not verify in the log: {problem}");

        PromotionRequest request;
        await using (var tx = await LockOrThrowAsync(deliveryId, ct).ConfigureAwait(false))
        {
            var d = tx.Current;
            RequireOpen(d);
            CheckNext(d, plan, to);
            if (d.State is LifecycleState.AwaitingApproval or LifecycleState.Promoting)
                throw new LifecycleException(LifecycleErrors.RequestOpen, $"a promotion of {d.Pipeline} {d.Tag} into {d.TargetStage} is already {(d.State == LifecycleState.Promoting ? "approved and running" : "waiting for its Freigabe")}");
            var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
            var automatic = to.Approval.Automatic && actor.IsEngine;
            request = new PromotionRequest(Guid.CreateVersion7(now), d.DeliveryId, d.Stage, to.Name, actor.Name, now,
                automatic ? PromotionRequestStatus.Approved : PromotionRequestStatus.Open, null);
            var step = LifecycleAttestations.Build($"request:{to.Name}", LifecycleAttestations.LifecycleType, true, d, d.Images, tx.LastLink, actor.Name, null, null,
                new Dictionary<string, string>
                {
                    ["toStage"] = to.Name,
                    ["rule"] = to.Approval.Describe(),
                    ["channel"] = actor.Channel,
                    ["detail"] = automatic ? $"automatic promotion into {to.Name}" : $"promotion into {to.Name} requested; Freigabe: {to.Approval.Describe()}",
                }, null, now);
            await tx.InsertRequestAsync(request, plan.IndexOf(to), ct).ConfigureAwait(false);
            var entry = await tx.AppendAsync(_ledger, step.Record, step.Statement, ct).ConfigureAwait(false);
            await tx.UpdateAsync(d with { State = automatic ? LifecycleState.Promoting : LifecycleState.AwaitingApproval, TargetStage = to.Name, UpdatedAt = now }, step.Link, ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            _log.Information("Promotion of {DeliveryId} into {Stage} requested by {Actor} (log {LogIndex})", deliveryId, to.Name, actor.Name, entry.LogIndex);
        }

        if (request.Status == PromotionRequestStatus.Approved)
            await ExecutePromotionAsync(deliveryId, ct).ConfigureAwait(false);
        return request;
    }

    /// <summary>
    /// Records a Freigabe for the open request into <see cref="ApprovalInput.Stage"/>. When it
    /// completes the stage's rule, the promotion runs (copy by digest with referrers, then the
    /// stage tag); a registry outage leaves it approved and resumable (<see cref="ApprovalOutcome.PromotionError"/>).
    /// </summary>
    /// <exception cref="LifecycleException">LC-WRONG-ROLE, LC-OWN-REQUEST, LC-DIGEST-MISMATCH, LC-DELIVERY-WITHDRAWN, LC-DELIVERY-SUPERSEDED, LC-NOT-AWAITING, LC-STAGE-SKIPPED, LC-SIGNATURE-*, LC-APPROVAL-EXPIRED, LC-ON-BEHALF-NOT-ALLOWED, LC-UNKNOWN-PERSON, LC-ALREADY-APPROVED.</exception>
    public Task<ApprovalOutcome> ApproveAsync(Actor actor, ApprovalInput input, CancellationToken ct) => DecideAsync(actor, input, ApprovalDecision.Approve, ct);

    /// <summary>Refuses the Freigabe (a comment is required): the request closes and the delivery is rejected at its current stage. Same checks as <see cref="ApproveAsync"/>.</summary>
    public Task<ApprovalOutcome> RejectAsync(Actor actor, ApprovalInput input, CancellationToken ct) => DecideAsync(actor, input, ApprovalDecision.Reject, ct);

    /// <summary>
    /// The canonical statement the actor (or the person they act for) would sign for this approval
    /// or refusal now: the bytes for <c>ssh-keygen -Y sign -n pipeline-freigabe</c>.
    /// </summary>
    public async Task<ApprovalStatement> ApprovalStatementAsync(Actor actor, ApprovalInput input, ApprovalDecision decision, CancellationToken ct)
    {
        var d = await LoadAsync(actor, input.DeliveryId, ct).ConfigureAwait(false);
        var (_, request, approver, digests) = await PrepareAsync(actor, input, d, ct).ConfigureAwait(false);
        return StatementFor(d, request, approver, actor, decision, digests, input.Comment, ApprovalStatement.ToSeconds(_time.GetUtcNow()));
    }

    private async Task<ApprovalOutcome> DecideAsync(Actor actor, ApprovalInput input, ApprovalDecision decision, CancellationToken ct)
    {
        if (decision == ApprovalDecision.Reject && string.IsNullOrWhiteSpace(input.Comment))
            throw new LifecycleException(LifecycleErrors.CommentRequired, "a refusal needs a comment saying why (--comment)");
        await LoadAsync(actor, input.DeliveryId, ct).ConfigureAwait(false);
        ApprovalRecord record;
        RuleEvaluation eval;
        DeliveryLifecycle after;
        await using (var tx = await LockOrThrowAsync(input.DeliveryId, ct).ConfigureAwait(false))
        {
            var d = tx.Current;
            var (stage, request, approver, digests) = await PrepareAsync(actor, input, d, ct).ConfigureAwait(false);
            var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
            var existing = await tx.ApprovalsAsync(request.Id, ct).ConfigureAwait(false);
            if (ApprovalRules.Evaluate(stage.Approval, request, d, existing, now).Counted.FirstOrDefault(a => a.Approver == approver.Name) is { } already)
                throw new LifecycleException(LifecycleErrors.AlreadyDecided,
                    $"{approver.Name} approved the promotion of {d.Pipeline} {d.Tag} into {stage.Name} already ({ApprovalStatement.Time(already.GivenAt)}); the same person counts once");

            // The statement: as signed by the approver (checked byte for byte), or made now.
            var enteredBy = actor.Person!.Name != approver.Name ? actor.Person.Name : null;
            ApprovalStatement statement;
            string? keyId = null, publicKey = null;
            if (input.Signature is { } signed)
            {
                var claimed = ApprovalStatement.Parse(signed.Statement);
                statement = StatementFor(d, request, approver, actor, decision, digests, input.Comment, claimed.IssuedAt);
                if (!statement.CanonicalBytes().AsSpan().SequenceEqual(signed.Statement))
                    throw new LifecycleException(LifecycleErrors.StatementMismatch, $"the signed statement does not match this {Word(decision)}: {Difference(claimed, statement)}");
                if (claimed.IssuedAt > now + TimeSpan.FromMinutes(5))
                    throw new LifecycleException(LifecycleErrors.StatementMismatch, $"the signed statement is dated {ApprovalStatement.Time(claimed.IssuedAt)}, in the future");
                if (stage.Approval.ValidFor is { } valid && claimed.IssuedAt + valid < now)
                    throw new LifecycleException(LifecycleErrors.Expired,
                        $"the signed Freigabe of {ApprovalStatement.Time(claimed.IssuedAt)} expired at {ApprovalStatement.Time(claimed.IssuedAt + valid)} (stage {stage.Name}: valid {Durations.Format(valid)}); sign a new one");
                keyId = ApprovalSignatures.Verify(signed.Statement, signed.Signature, approver, _time);
                publicKey = keyId.StartsWith("ssh ", StringComparison.Ordinal) ? approver.SshKey!.ToString() : approver.OpenPgpKeyText;
            }
            else
            {
                if (stage.Approval.RequireSignature)
                    throw new LifecycleException(LifecycleErrors.SignatureRequired,
                        $"a Freigabe into {stage.Name} must carry {approver.Name}'s own signature (pipeline approve --sign-with KEY, or --statement and --signature)");
                statement = StatementFor(d, request, approver, actor, decision, digests, input.Comment, ApprovalStatement.ToSeconds(now));
            }

            var bytes = statement.CanonicalBytes();
            var passed = decision == ApprovalDecision.Approve;
            var who = approver.Name + (enteredBy is null ? "" : $" (entered by {enteredBy})") + (keyId is null ? "" : $", signed {keyId}");
            var step = LifecycleAttestations.Build($"{(passed ? "freigabe" : "refusal")}:{stage.Name}", LifecycleAttestations.FreigabeType, passed, d, d.Images, tx.LastLink, who,
                passed ? null : "LC-REFUSED", passed ? null : input.Comment, new Dictionary<string, string>
                {
                    ["approver"] = approver.Name,
                    ["enteredBy"] = enteredBy ?? "",
                    ["channel"] = actor.Channel,
                    ["comment"] = input.Comment ?? "",
                    ["toStage"] = stage.Name,
                    ["rule"] = stage.Approval.Describe(),
                    ["detail"] = $"{Word(decision)} into {stage.Name}" + (string.IsNullOrEmpty(input.Comment) ? "" : $": {input.Comment}"),
                }, (bytes, input.Signature?.Signature, keyId, publicKey), now);
            var entry = await tx.AppendAsync(_ledger, step.Record, step.Statement, ct).ConfigureAwait(false);
            record = new ApprovalRecord(Guid.CreateVersion7(now), d.DeliveryId, request.Id, d.Stage, stage.Name, approver.Name, enteredBy, decision, input.Comment,
                statement.IssuedAt, statement.Digests.Order(StringComparer.Ordinal).ToList(), d.Result.Digest, keyId, actor.Channel, entry.LogIndex, null);
            await tx.InsertApprovalAsync(record, bytes, input.Signature?.Signature, ct).ConfigureAwait(false);

            eval = ApprovalRules.Evaluate(stage.Approval, request, d, existing.Append(record), now);
            var next = d with { UpdatedAt = now };
            if (!passed)
            {
                await tx.SetRequestStatusAsync(request.Id, PromotionRequestStatus.Rejected, null, ct).ConfigureAwait(false);
                next = next with { State = LifecycleState.Rejected, TargetStage = null, ReasonCode = "LC-REFUSED", Reason = $"Freigabe into {stage.Name} refused by {approver.Name}: {input.Comment}" };
            }
            else if (eval.Complete)
            {
                await tx.SetRequestStatusAsync(request.Id, PromotionRequestStatus.Approved, null, ct).ConfigureAwait(false);
                next = next with { State = LifecycleState.Promoting };
            }

            after = await tx.UpdateAsync(next, step.Link, ct).ConfigureAwait(false);
            if (!passed) await tx.VoidApprovalsAsync($"the promotion into {stage.Name} was refused", ct).ConfigureAwait(false);
            await tx.CommitAsync(ct).ConfigureAwait(false);
            _log.Information("{Decision} of {DeliveryId} into {Stage} by {Approver} (entered by {EnteredBy}, signed {Signed}); {Missing} more needed",
                decision, d.DeliveryId, stage.Name, approver.Name, enteredBy ?? approver.Name, keyId is not null, eval.Missing);
        }

        string? error = null;
        if (decision == ApprovalDecision.Approve && eval.Complete)
            (after, error) = await ExecutePromotionAsync(input.DeliveryId, ct).ConfigureAwait(false);
        else await CheckpointAsync(ct).ConfigureAwait(false);
        return new ApprovalOutcome(record, decision == ApprovalDecision.Approve && eval.Complete, eval.Missing, after, error);
    }

    /// <summary>Checks a decision against the delivery as it is: stage, open request, approver, digests.</summary>
    private async Task<(StageDefinition Stage, PromotionRequest Request, Person Approver, IReadOnlyList<string> Digests)> PrepareAsync(
        Actor actor, ApprovalInput input, DeliveryLifecycle d, CancellationToken ct)
    {
        if (actor.Person is null) throw new LifecycleException(LifecycleErrors.NotAuthenticated, "a Freigabe needs an authenticated person");
        var plan = PlanFor(d.Pipeline);
        var stage = plan.Find(input.Stage) ?? throw UnknownStage(input.Stage, plan);
        RequireOpen(d);
        var request = (await _store.RequestsAsync(d.DeliveryId, activeOnly: true, ct).ConfigureAwait(false)).FirstOrDefault();
        if (request is null || request.ToStage != stage.Name || request.Status != PromotionRequestStatus.Open)
        {
            if (plan.IndexOf(stage) > d.StageIndex + 1)
                throw new LifecycleException(LifecycleErrors.StageSkipped,
                    $"{d.Pipeline} {d.Tag} is in {d.StageText}; it must pass {plan.Stages[d.StageIndex + 1].Name} before {stage.Name} (no stage can be skipped)");
            throw new LifecycleException(LifecycleErrors.NotAwaiting, request?.Status == PromotionRequestStatus.Approved && request.ToStage == stage.Name
                ? $"the promotion of {d.Pipeline} {d.Tag} into {stage.Name} is approved already (the rule is complete); it needs no more Freigaben"
                : $"no promotion of {d.Pipeline} {d.Tag} into {stage.Name} waits for a Freigabe (it is {LifecycleStore.StateText(d.State)} at {d.StageText}); request one with 'pipeline promote'");
        }

        Person? onBehalf = null;
        if (input.OnBehalfOf is { Length: > 0 } name)
        {
            // A person of another tenant is not named to the actor: answered as for an unlisted name.
            onBehalf = People.Find(name) is { } found && found.InTenantScope(d.Pipeline) ? found
                : throw new LifecycleException(LifecycleErrors.UnknownPerson, $"'{name}' is not in the people file; a Freigabe can only be entered for a listed person");
        }

        var approver = ApprovalRules.CheckApprover(stage.Approval, actor, onBehalf, request, d.Pipeline);

        var digests = d.Digests;
        if (input.Digests is { Count: > 0 } named)
        {
            var normalized = named.Select(x => x.Contains('@', StringComparison.Ordinal) ? x[(x.LastIndexOf('@') + 1)..] : x).Select(x => x.Trim().ToLowerInvariant())
                .Distinct().Order(StringComparer.Ordinal).ToList();
            if (!normalized.SequenceEqual(d.Digests))
                throw new LifecycleException(LifecycleErrors.DigestMismatch,
                    $"the Freigabe names {string.Join(", ", normalized)}, but {d.Pipeline} {d.Tag} in {d.StageText} is {string.Join(", ", d.Digests)}; approve exactly the images in the stage");
        }

        return (stage, request, approver, digests);
    }

    private static ApprovalStatement StatementFor(DeliveryLifecycle d, PromotionRequest request, Person approver, Actor actor, ApprovalDecision decision,
        IReadOnlyList<string> digests, string? comment, DateTimeOffset issuedAt) =>
        new(d.DeliveryId, d.Pipeline, d.Tag, request.FromStage, request.ToStage, decision == ApprovalDecision.Approve ? "approve" : "reject", approver.Name,
            actor.Person is { } p && p.Name != approver.Name ? p.Name : null, digests, d.Result.Digest, string.IsNullOrEmpty(comment) ? null : comment, issuedAt);

    private static string Word(ApprovalDecision d) => d == ApprovalDecision.Approve ? "Freigabe" : "refusal";

    private static string Difference(ApprovalStatement claimed, ApprovalStatement expected)
    {
        var diffs = new List<string>();
        void Check(string what, string? a, string? b)
        {
            if (a != b) diffs.Add($"{what} is '{a}', expected '{b}'");
        }

        Check("delivery", claimed.DeliveryId.ToString("D"), expected.DeliveryId.ToString("D"));
        Check("toStage", claimed.ToStage, expected.ToStage);
        Check("fromStage", claimed.FromStage, expected.FromStage);
        Check("decision", claimed.Decision, expected.Decision);
        Check("approver", claimed.Approver, expected.Approver);
        Check("enteredBy", claimed.EnteredBy, expected.EnteredBy);
        Check("digests", string.Join(",", claimed.Digests), string.Join(",", expected.Digests));
        Check("stageResult", claimed.StageResult, expected.StageResult);
        Check("comment", claimed.Comment, expected.Comment);
        return diffs.Count == 0 ? "the bytes differ" : string.Join("; ", diffs);
    }

    private static void CheckNext(DeliveryLifecycle d, StagePlan plan, StageDefinition to)
    {
        var index = plan.IndexOf(to);
        if (index == d.StageIndex + 1 && StageBlock(d, plan) is { } blocked) throw blocked;
        if (index == d.StageIndex + 1) return;
        if (index > d.StageIndex + 1)
            throw new LifecycleException(LifecycleErrors.StageSkipped,
                $"{d.Pipeline} {d.Tag} is in {d.StageText}; it must pass {plan.Stages[d.StageIndex + 1].Name} before {to.Name} (no stage can be skipped)");
        throw new LifecycleException(LifecycleErrors.StageSkipped, $"{d.Pipeline} {d.Tag} is in {d.StageText}, past {to.Name}; the next stage is {(d.StageIndex + 1 < plan.Stages.Count ? plan.Stages[d.StageIndex + 1].Name : "none")}");
    }

    private static LifecycleException UnknownStage(string name, StagePlan plan) =>
        new(LifecycleErrors.UnknownStage, $"no stage '{name}'; this pipeline's stages are {string.Join(" ► ", plan.Stages.Select(s => s.Name))}");

    private async Task<LifecycleTransaction> LockOrThrowAsync(Guid deliveryId, CancellationToken ct) =>
        await _store.LockAsync(deliveryId, ct).ConfigureAwait(false)
        ?? throw new LifecycleException(LifecycleErrors.UnknownDelivery, $"no lifecycle for delivery {deliveryId}");
}
