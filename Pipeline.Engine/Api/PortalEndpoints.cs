using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Engine.Api;

/// <summary>What the portal endpoints work with.</summary>
/// <param name="Ledger">Read only here: the intake evidence (signer, scan verdict, SBOM) shown to approvers.</param>
public sealed record Portal(LifecycleService Lifecycle, PortalRuns Runs, LedgerStore Ledger, IReadOnlyList<PipelineDefinition> Pipelines);

/// <summary>
/// The portal's JSON API under <c>/api/portal</c>: people (from the people file) authenticate with
/// <c>Authorization: Bearer TOKEN</c> (never Basic, never a cookie, never in a URL); the lifecycle
/// service checks roles and pipelines and records every action in the ledger; this layer logs
/// every action (person, action, delivery) and maps refusals to <c>{code, message}</c> with
/// 400/401/403/404/409. State changes are POSTs behind <see cref="PortalCsrf"/>. With tenants,
/// whatever lies outside the person's tenants does not exist for them: lists leave it out, and a
/// delivery, pass or pipeline of another tenant is answered exactly as an unknown id or name
/// (404 LC-UNKNOWN-DELIVERY, RUN-UNKNOWN, RUN-UNKNOWN-PIPELINE), for reads and actions alike.
/// </summary>
public static class PortalEndpoints
{
    public const string Prefix = "/api/portal";
    private const string Channel = "portal";

    public static void Map(WebApplication app, Portal portal, Serilog.ILogger log)
    {
        var lc = portal.Lifecycle;
        Func<Actor, CancellationToken, Task<PortalMe>> me = (a, _) =>
            Task.FromResult(new PortalMe(a.Name, a.Person!.Roles.Order().Select(r => r.ToString().ToLowerInvariant()).ToList(), a.Person.EffectivePipelines, a.Person.Tenants));
        app.MapGet(Prefix + "/me", (HttpContext ctx) => Read(ctx, portal, log, me));
        app.MapGet(Prefix + "/board", (HttpContext ctx) => Read(ctx, portal, log, async (a, ct) =>
            PortalBoard.Of(await lc.GetBoardAsync(a, ctx.Request.Query["pipeline"] is { Count: > 0 } p && !string.IsNullOrWhiteSpace(p[0]) ? p[0] : null, ct).ConfigureAwait(false))));
        app.MapGet(Prefix + "/approvals", (HttpContext ctx) => Read(ctx, portal, log, async (a, ct) =>
        {
            var list = new List<PortalPending>();
            foreach (var p in await lc.PendingApprovalsAsync(a, ct).ConfigureAwait(false))
                list.Add(new PortalPending(PortalDelivery.Of(p.Delivery), p.Request, PortalStage.Of(p.Stage), p.Counted, p.Missing, p.ActorMayApprove, p.WhyNot,
                    await EvidenceAsync(portal.Ledger, p.Delivery, ct).ConfigureAwait(false)));
            return list;
        }));
        app.MapGet(Prefix + "/deliveries/{id:guid}", (Guid id, HttpContext ctx) => Read(ctx, portal, log, async (a, ct) =>
        {
            var d = await lc.GetAsync(a, id, ct).ConfigureAwait(false);
            return new PortalDeliveryDetail(PortalDelivery.Of(d), lc.PlanFor(d.Pipeline).Stages.Select(PortalStage.Of).ToList(),
                await lc.GetHistoryAsync(a, id, ct).ConfigureAwait(false), await lc.GetApprovalsAsync(a, id, ct).ConfigureAwait(false),
                await EvidenceAsync(portal.Ledger, d, ct).ConfigureAwait(false));
        }));
        app.MapGet(Prefix + "/runs/{id:guid}", (Guid id, HttpContext ctx) => Read(ctx, portal, log, (a, _) =>
        {
            // A pass of another tenant's pipeline is answered like an unknown id.
            var r = portal.Runs.Get(id) is { } known && a.Person!.InTenantScope(known.Pipeline) ? known
                : throw new PipelineException("RUN-UNKNOWN", $"no on-demand pass {id} (only the last 100 of this portal process are kept)");
            RequireRunner(a, r.Pipeline);
            return Task.FromResult(r);
        }));

        app.MapPost(Prefix + "/pipelines/{name}/run", (string name, HttpContext ctx) => Act<RunBody>(ctx, portal, log, "run", null, async (a, _, ct) =>
        {
            // Only the person's tenants' pipelines exist for them (and are named as known).
            var visible = portal.Pipelines.Where(p => a.Person!.InTenantScope(p.Name)).ToList();
            var definition = visible.FirstOrDefault(p => p.Name == name)
                             ?? throw new PipelineException("RUN-UNKNOWN-PIPELINE", $"no pipeline named '{name}'; known: {string.Join(", ", visible.Select(p => p.Name))}");
            RequireRunner(a, definition.Name);
            var run = await portal.Runs.StartAsync(definition, a.Name, ct).ConfigureAwait(false);
            ctx.Response.Headers.Location = $"{Prefix}/runs/{run.Id}";
            return (202, (object)run);
        }));
        app.MapPost(Prefix + "/deliveries/{id:guid}/promote", (Guid id, HttpContext ctx) => Act<PromoteBody>(ctx, portal, log, "promote", id, async (a, b, ct) =>
            (201, (object)await lc.RequestPromotionAsync(a, id, Required(b.Stage, "stage"), ct).ConfigureAwait(false))));
        app.MapPost(Prefix + "/deliveries/{id:guid}/approve", (Guid id, HttpContext ctx) => Act<DecisionBody>(ctx, portal, log, "approve", id, async (a, b, ct) =>
            (200, (object)Decision(await lc.ApproveAsync(a, Input(id, b), ct).ConfigureAwait(false)))));
        app.MapPost(Prefix + "/deliveries/{id:guid}/reject", (Guid id, HttpContext ctx) => Act<DecisionBody>(ctx, portal, log, "reject", id, async (a, b, ct) =>
            (200, (object)Decision(await lc.RejectAsync(a, Input(id, b), ct).ConfigureAwait(false)))));
        app.MapPost(Prefix + "/deliveries/{id:guid}/withdraw", (Guid id, HttpContext ctx) => Act<WithdrawBody>(ctx, portal, log, "withdraw", id, async (a, b, ct) =>
            (200, (object)PortalDelivery.Of(await lc.WithdrawAsync(a, id, b.Reason ?? "", ct).ConfigureAwait(false)))));

        // The canonical statement to sign with one's own key: the raw bytes, exactly as to be signed.
        app.MapPost(Prefix + "/deliveries/{id:guid}/statement", async (Guid id, HttpContext ctx) =>
        {
            if (await Authenticate(ctx, portal) is not { } actor || !await SameOrigin(ctx) || await Body<DecisionBody>(ctx) is not { } b) return;
            try
            {
                var decision = b.Decision is null or "approve" ? ApprovalDecision.Approve
                    : b.Decision == "reject" ? ApprovalDecision.Reject
                    : throw new PipelineException("PORTAL-BAD-REQUEST", "'decision' must be 'approve' or 'reject'");
                await lc.GetAsync(actor, id, ctx.RequestAborted).ConfigureAwait(false);
                var statement = await lc.ApprovalStatementAsync(actor, Input(id, b), decision, ctx.RequestAborted).ConfigureAwait(false);
                ctx.Response.ContentType = "application/json";
                ctx.Response.Headers["X-Statement-Digest"] = statement.Digest;
                await ctx.Response.Body.WriteAsync(statement.CanonicalBytes(), ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (PipelineException e)
            {
                await Refuse(ctx, log, actor, "statement", id, e).ConfigureAwait(false);
            }
        });
    }

    /// <summary>HTTP status of a refusal code.</summary>
    public static int StatusFor(string code) => code switch
    {
        LifecycleErrors.UnknownDelivery or "RUN-UNKNOWN-PIPELINE" or "RUN-UNKNOWN" => 404,
        LifecycleErrors.NotAuthenticated => 401,
        LifecycleErrors.WrongRole or LifecycleErrors.PipelineNotAllowed or LifecycleErrors.OwnRequest or LifecycleErrors.OnBehalfNotAllowed
            or LifecycleErrors.NoPersonalKey or PortalCsrf.Code => 403,
        LifecycleErrors.UnknownStage or LifecycleErrors.UnknownPerson or LifecycleErrors.CommentRequired or LifecycleErrors.StatementMismatch
            or LifecycleErrors.SignatureRequired or LifecycleErrors.SignatureInvalid or "PORTAL-BAD-REQUEST" => 400,
        LifecycleErrors.DigestMismatch or LifecycleErrors.Withdrawn or LifecycleErrors.Superseded or LifecycleErrors.Closed or LifecycleErrors.NotAccepted
            or LifecycleErrors.StageSkipped or LifecycleErrors.NotAwaiting or LifecycleErrors.RequestOpen or LifecycleErrors.AlreadyDecided or LifecycleErrors.Expired
            or LifecycleErrors.ChainBroken or LifecycleErrors.Busy or LifecycleErrors.Concurrent or LifecycleErrors.AutomaticNotFirst or "RUN-BUSY" => 409,
        LifecycleErrors.RegistryFailed or LifecycleErrors.CopyUnverified or LifecycleErrors.WithdrawRegistry => 503,
        _ => 500,
    };

    private static PortalDecision Decision(ApprovalOutcome o) => new(o.Approval, o.RuleComplete, o.Missing, PortalDelivery.Of(o.Delivery), o.PromotionError);

    private static ApprovalInput Input(Guid id, DecisionBody b)
    {
        SignedApproval? signed = null;
        if (b.Statement is not null || b.Signature is not null)
        {
            if (b.Statement is null || b.Signature is null)
                throw new PipelineException("PORTAL-BAD-REQUEST", "a signed Freigabe needs both 'statement' (base64 of the exact signed bytes) and 'signature' (armored)");
            try
            {
                signed = new SignedApproval(Convert.FromBase64String(b.Statement), b.Signature);
            }
            catch (FormatException)
            {
                throw new PipelineException("PORTAL-BAD-REQUEST", "'statement' must be the signed statement's bytes in base64");
            }
        }

        return new ApprovalInput(id, Required(b.Stage, "stage"), b.Digests, b.Comment, string.IsNullOrWhiteSpace(b.OnBehalfOf) ? null : b.OnBehalfOf.Trim(), signed);
    }

    private static string Required(string? value, string name) =>
        string.IsNullOrWhiteSpace(value) ? throw new PipelineException("PORTAL-BAD-REQUEST", $"'{name}' is required") : value.Trim();

    /// <summary>On-demand passes: a Systempfleger:in allowed on the pipeline.</summary>
    private static void RequireRunner(Actor a, string pipeline)
    {
        var p = a.Person!;
        if (!p.MayActOn(pipeline))
            throw new LifecycleException(LifecycleErrors.PipelineNotAllowed, $"{p.Name} may not act on pipeline '{pipeline}' (people file: pipelines {string.Join(", ", p.Pipelines)})");
        if (!p.Has(Role.Systempfleger))
            throw new LifecycleException(LifecycleErrors.WrongRole, $"an on-demand pass needs the role systempfleger; {p.Name} has {p.RolesText}");
    }

    /// <summary>The intake evidence of a delivery from its ledger entries: tag signer, scan verdict, SBOM referrers.</summary>
    internal static async Task<IntakeEvidence> EvidenceAsync(LedgerStore ledger, DeliveryLifecycle d, CancellationToken ct)
    {
        var entries = await ledger.ReadAsync(d.DeliveryId, ct).ConfigureAwait(false);
        var verify = entries.LastOrDefault(e => e.Record.Stage == "verify")?.Record;
        var scan = entries.LastOrDefault(e => e.Record.Stage == "scan")?.Record;
        var push = entries.LastOrDefault(e => e.Record.Stage == "push" && e.Record.Verdict == Verdict.Passed)?.Record;
        string? signer = verify?.Evidence.GetValueOrDefault("signer") is { } s ? s + (verify.Evidence.GetValueOrDefault("signerOrganisation") is { Length: > 0 } o ? $" ({o})" : "") : null;
        string? scanDetail = scan is null ? null
            : $"{scan.Evidence.GetValueOrDefault("decision") ?? "?"}; {scan.Evidence.GetValueOrDefault("filesScanned") ?? "?"} files scanned, {scan.Evidence.GetValueOrDefault("findingCount") ?? "0"} findings; policy {scan.Evidence.GetValueOrDefault("policy")} {scan.Evidence.GetValueOrDefault("policyVersion")}";
        var sboms = new List<string>();
        var referrers = push?.Evidence.Where(kv => kv.Key.EndsWith(".sbomReferrer", StringComparison.Ordinal)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList() ?? [];
        foreach (var (key, value) in referrers)
        {
            var digest = value.Split(' ')[0];
            var name = key[..^".sbomReferrer".Length];
            sboms.Add(d.Images.Count == 1 ? $"{name}: {d.Images[0].Registry}/{d.Images[0].Repository}@{digest}" : $"{name}: {digest}");
        }

        return new IntakeEvidence(signer, verify?.Evidence.GetValueOrDefault("signerKey"), scan is null ? null : scan.Verdict == Verdict.Passed ? "passed" : "failed", scanDetail, sboms);
    }

    private static async Task<Actor?> Authenticate(HttpContext ctx, Portal portal)
    {
        var header = ctx.Request.Headers.Authorization.ToString();
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
        if (portal.Lifecycle.People.Authenticate(token, Channel) is { Person: not null } actor) return actor;
        ctx.Response.Headers.WWWAuthenticate = "Bearer realm=\"pipeline-portal\"";
        var (code, message) = header.Length == 0
            ? ("PORTAL-NO-TOKEN", "a personal token is required: send 'Authorization: Bearer TOKEN'")
            : token is null
                ? ("PORTAL-BAD-TOKEN", "the portal takes 'Authorization: Bearer TOKEN' only (no Basic: browsers resend it on their own)")
                : ("PORTAL-BAD-TOKEN", "the token belongs to no person in the people file (people.file)");
        await Write(ctx, 401, new ApiError(code, message)).ConfigureAwait(false);
        return null;
    }

    private static async Task<bool> SameOrigin(HttpContext ctx)
    {
        if (PortalCsrf.Check(ctx.Request) is not { } why) return true;
        await Write(ctx, 403, new ApiError(PortalCsrf.Code, why)).ConfigureAwait(false);
        return false;
    }

    /// <summary>The JSON body, or null after answering 400.</summary>
    private static async Task<T?> Body<T>(HttpContext ctx) where T : class
    {
        try
        {
            if (await ctx.Request.ReadFromJsonAsync<T>(AuditApiHost.Json, ctx.RequestAborted).ConfigureAwait(false) is { } b) return b;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or BadHttpRequestException)
        {
            await Write(ctx, 400, new ApiError("PORTAL-BAD-REQUEST", "the body is not the expected JSON object: " + e.Message.Split('\n')[0])).ConfigureAwait(false);
            return null;
        }

        await Write(ctx, 400, new ApiError("PORTAL-BAD-REQUEST", "a JSON object body is required")).ConfigureAwait(false);
        return null;
    }

    private static async Task Read<T>(HttpContext ctx, Portal portal, Serilog.ILogger log, Func<Actor, CancellationToken, Task<T>> run)
    {
        if (await Authenticate(ctx, portal).ConfigureAwait(false) is not { } actor) return;
        try
        {
            var result = await run(actor, ctx.RequestAborted).ConfigureAwait(false);
            await Write(ctx, 200, result).ConfigureAwait(false);
        }
        catch (PipelineException e)
        {
            await Refuse(ctx, log, actor, "read " + ctx.Request.Path.Value, null, e).ConfigureAwait(false);
        }
    }

    /// <summary>A state-changing action: token, same origin, JSON body, then the lifecycle call; logged with person, action and delivery.</summary>
    private static async Task Act<TBody>(HttpContext ctx, Portal portal, Serilog.ILogger log, string action, Guid? delivery,
        Func<Actor, TBody, CancellationToken, Task<(int Status, object Result)>> run) where TBody : class
    {
        if (await Authenticate(ctx, portal).ConfigureAwait(false) is not { } actor) return;
        if (!await SameOrigin(ctx).ConfigureAwait(false))
        {
            log.Warning("Portal {Action} on {DeliveryId} by {Person} refused: {Code}", action, delivery, actor.Name, PortalCsrf.Code);
            return;
        }

        if (await Body<TBody>(ctx).ConfigureAwait(false) is not { } body) return;
        try
        {
            // Tenant scope first: a person of another pipeline learns nothing about this delivery's state.
            if (delivery is { } id) await portal.Lifecycle.GetAsync(actor, id, ctx.RequestAborted).ConfigureAwait(false);
            var (status, result) = await run(actor, body, ctx.RequestAborted).ConfigureAwait(false);
            log.Information("Portal {Action} on {DeliveryId} by {Person}: {Status}", action, delivery, actor.Name, status);
            await Write(ctx, status, result).ConfigureAwait(false);
        }
        catch (PipelineException e)
        {
            await Refuse(ctx, log, actor, action, delivery, e).ConfigureAwait(false);
        }
    }

    private static Task Refuse(HttpContext ctx, Serilog.ILogger log, Actor actor, string action, Guid? delivery, PipelineException e)
    {
        var status = StatusFor(e.Code);
        if (status >= 500) log.Error("Portal {Action} on {DeliveryId} by {Person} failed: {Code} {Error}", action, delivery, actor.Name, e.Code, e.Message);
        else log.Information("Portal {Action} on {DeliveryId} by {Person} refused: {Code}", action, delivery, actor.Name, e.Code);
        return Write(ctx, status, new ApiError(e.Code, e.Message));
    }

    private static Task Write<T>(HttpContext ctx, int status, T body)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(body, AuditApiHost.Json, ctx.RequestAborted);
    }
}
