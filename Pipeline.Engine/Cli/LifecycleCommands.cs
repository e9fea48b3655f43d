using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline status | promote | approve | reject | withdraw | history | approval-statement</c>:
/// the delivery lifecycle in the terminal. Actions need the person's token (<c>--token-file</c> or
/// <c>PIPELINE_TOKEN</c>); <c>status</c> and <c>history</c> without a token show everything (the
/// operator on the engine host, who holds the engine configuration anyway). The logic lives in
/// <see cref="LifecycleService"/>; this parses options and prints.
/// </summary>
public static class LifecycleCommands
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static IEnumerable<Command> Create(Option<string?> config, Option<bool> jsonLogs, TextWriter stdout, TextWriter stderr)
    {
        var tokenFile = new Option<string?>("--token-file") { Description = "file holding your personal token (default: $PIPELINE_TOKEN)" };
        var json = new Option<bool>("--json") { Description = "print JSON" };
        var id = new Argument<Guid>("delivery-id") { Description = "the delivery (see 'pipeline status')" };
        var stage = new Option<string>("--stage") { Description = "the stage the delivery is to enter (e.g. Abnahme)", Required = true };
        var digest = new Option<string[]>("--digest") { Description = "the exact image digest(s) you approve (default: those shown by 'pipeline status')" };
        var comment = new Option<string?>("--comment") { Description = "your comment (required for a refusal)" };
        var onBehalf = new Option<string?>("--on-behalf-of") { Description = "enter the Freigabe for this person (systempfleger only, where the rule allows it)" };
        var signWith = new Option<string?>("--sign-with") { Description = "sign the approval statement with this SSH private key (ssh-keygen -Y sign -n pipeline-freigabe)" };
        var signature = new Option<string?>("--signature") { Description = "a signature made elsewhere over the statement in --statement (sshsig or OpenPGP armored)" };
        var statementFile = new Option<string?>("--statement") { Description = "the approval statement bytes you signed (from 'pipeline approval-statement')" };
        var pipelineOpt = new Option<string?>("--pipeline") { Description = "only this pipeline" };

        Func<Exception, int?> refusal = e => e is LifecycleException { IsTransient: false } ? PipelineCli.Rejected : null;

        var status = new Command("status", "the board: per pipeline which version is in which stage and what waits for whom");
        status.Options.Add(pipelineOpt);
        status.Options.Add(json);
        status.Options.Add(tokenFile);
        status.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var actor = Authenticate(engine, p.GetValue(tokenFile), optional: true);
            var board = await engine.Lifecycle.GetBoardAsync(actor, p.GetValue(pipelineOpt), ct).ConfigureAwait(false);
            if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(board, Json));
            else PrintBoard(board, stdout);
            return PipelineCli.Ok;
        }, refusal));

        var to = new Option<string?>("--to") { Description = "the next stage (no stage can be skipped)" };
        var resume = new Option<bool>("--resume") { Description = "complete approved promotions that did not finish (registry outage, crash), each exactly once" };
        var idOptional = new Argument<Guid?>("delivery-id") { Description = "the delivery", Arity = ArgumentArity.ZeroOrOne };
        var promote = new Command("promote", "request the promotion of a delivery into its next stage (runs at once when that stage is automatic), or --resume");
        promote.Arguments.Add(idOptional);
        promote.Options.Add(to);
        promote.Options.Add(resume);
        promote.Options.Add(pipelineOpt);
        promote.Options.Add(tokenFile);
        promote.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            if (p.GetValue(resume))
            {
                var done = await engine.Lifecycle.ResumeAsync(p.GetValue(pipelineOpt), ct).ConfigureAwait(false);
                foreach (var d in done) stdout.WriteLine($"{d.DeliveryId} {d.Pipeline} {d.Tag}: now {State(d)}");
                stdout.WriteLine($"{done.Count} promotion(s) completed");
                return PipelineCli.Ok;
            }

            var actor = Authenticate(engine, p.GetValue(tokenFile));
            var deliveryId = p.GetValue(idOptional) ?? throw new LifecycleException(LifecycleErrors.UnknownDelivery, "name the delivery to promote (or --resume)");
            var stageName = p.GetValue(to) ?? throw new LifecycleException(LifecycleErrors.UnknownStage, "name the stage with --to");
            var request = await engine.Lifecycle.RequestPromotionAsync(actor, deliveryId, stageName, ct).ConfigureAwait(false);
            var now = await engine.Lifecycle.GetAsync(actor, deliveryId, ct).ConfigureAwait(false);
            stdout.WriteLine($"promotion of {now.Pipeline} {now.Tag} into {request.ToStage} requested by {request.RequestedBy}: {State(now)}");
            return PipelineCli.Ok;
        }, refusal));

        Command Decide(string name, string description, ApprovalDecision decision)
        {
            var c = new Command(name, description);
            c.Arguments.Add(id);
            foreach (var o in new Option[] { stage, digest, comment, onBehalf, signWith, signature, statementFile, tokenFile, json }) c.Options.Add(o);
            c.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
            {
                await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
                var actor = Authenticate(engine, p.GetValue(tokenFile));
                var input = new ApprovalInput(p.GetValue(id), p.GetValue(stage)!, p.GetValue(digest), p.GetValue(comment), p.GetValue(onBehalf), null);
                if (p.GetValue(signWith) is { } key)
                {
                    var statement = await engine.Lifecycle.ApprovalStatementAsync(actor, input, decision, ct).ConfigureAwait(false);
                    input = input with { Signature = new SignedApproval(statement.CanonicalBytes(), SshSign(statement.CanonicalBytes(), key)) };
                }
                else if (p.GetValue(signature) is { } sigFile)
                {
                    var bytesFile = p.GetValue(statementFile) ?? throw new LifecycleException(LifecycleErrors.StatementMismatch, "--signature needs --statement FILE: the exact bytes you signed");
                    input = input with { Signature = new SignedApproval(await File.ReadAllBytesAsync(bytesFile, ct).ConfigureAwait(false), await File.ReadAllTextAsync(sigFile, ct).ConfigureAwait(false)) };
                }

                var outcome = decision == ApprovalDecision.Approve
                    ? await engine.Lifecycle.ApproveAsync(actor, input, ct).ConfigureAwait(false)
                    : await engine.Lifecycle.RejectAsync(actor, input, ct).ConfigureAwait(false);
                if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(outcome, Json));
                else
                {
                    var a = outcome.Approval;
                    stdout.WriteLine($"{(decision == ApprovalDecision.Approve ? "Freigabe" : "refusal")} into {a.ToStage} by {a.Approver}" + (a.EnteredBy is null ? "" : $" (entered by {a.EnteredBy})") +
                                     (a.Signed ? $", signed {a.SignatureKey}" : "") + $", log entry {a.LogIndex}");
                    if (decision == ApprovalDecision.Approve)
                        stdout.WriteLine(outcome.RuleComplete ? "rule complete" : $"{outcome.Missing} more Freigabe(n) needed");
                    stdout.WriteLine($"{outcome.Delivery.Pipeline} {outcome.Delivery.Tag}: {State(outcome.Delivery)}");
                }

                if (outcome.PromotionError is { } error)
                {
                    stderr.WriteLine(error);
                    return PipelineCli.Failure;
                }

                return PipelineCli.Ok;
            }, refusal));
            return c;
        }

        var statementCmd = new Command("approval-statement", "print the exact bytes of the approval statement to sign with your own key (then: approve --statement FILE --signature SIG)");
        statementCmd.Arguments.Add(id);
        var reject = new Option<bool>("--reject") { Description = "the statement of a refusal instead of a Freigabe" };
        foreach (var o in new Option[] { stage, digest, comment, onBehalf, tokenFile, reject }) statementCmd.Options.Add(o);
        statementCmd.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var actor = Authenticate(engine, p.GetValue(tokenFile));
            var input = new ApprovalInput(p.GetValue(id), p.GetValue(stage)!, p.GetValue(digest), p.GetValue(comment), p.GetValue(onBehalf), null);
            var statement = await engine.Lifecycle.ApprovalStatementAsync(actor, input, p.GetValue(reject) ? ApprovalDecision.Reject : ApprovalDecision.Approve, ct).ConfigureAwait(false);
            stdout.Write(System.Text.Encoding.UTF8.GetString(statement.CanonicalBytes()));
            return PipelineCli.Ok;
        }, refusal));

        var reason = new Option<string>("--reason") { Description = "why the delivery is taken back", Required = true };
        var withdraw = new Command("withdraw", "Rücknahme: take a delivery back from any stage, with a reason");
        withdraw.Arguments.Add(id);
        withdraw.Options.Add(reason);
        withdraw.Options.Add(tokenFile);
        withdraw.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var d = await engine.Lifecycle.WithdrawAsync(Authenticate(engine, p.GetValue(tokenFile)), p.GetValue(id), p.GetValue(reason)!, ct).ConfigureAwait(false);
            stdout.WriteLine($"{d.Pipeline} {d.Tag}: {State(d)}: {d.Reason}");
            return PipelineCli.Ok;
        }, refusal));

        var history = new Command("history", "every recorded step of a delivery: intake stages, requests, Freigaben, promotions");
        history.Arguments.Add(id);
        history.Options.Add(json);
        history.Options.Add(tokenFile);
        history.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var actor = Authenticate(engine, p.GetValue(tokenFile), optional: true);
            var events = await engine.Lifecycle.GetHistoryAsync(actor, p.GetValue(id), ct).ConfigureAwait(false);
            if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(events, Json));
            else
            {
                foreach (var e in events)
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{e.At:yyyy-MM-ddTHH:mm:ssZ}  #{e.LogIndex,-5} {e.Step,-24} {e.Verdict,-6} {e.Actor ?? ""}{(e.ReasonCode is null ? "" : "  " + e.ReasonCode)}  {e.Detail}"));
            }

            return PipelineCli.Ok;
        }, refusal));

        return [status, promote, Decide("approve", "give your Freigabe for a delivery's promotion into a stage (optionally signed with your own key)", ApprovalDecision.Approve),
            Decide("reject", "refuse the Freigabe (with --comment): the delivery goes no further", ApprovalDecision.Reject), withdraw, history, statementCmd];
    }

    /// <summary>The person behind the token in --token-file or $PIPELINE_TOKEN; with <paramref name="optional"/> and no token, the engine's operator view.</summary>
    private static Actor Authenticate(PipelineEngine engine, string? tokenFile, bool optional = false)
    {
        var token = tokenFile is not null ? File.ReadAllText(tokenFile).Trim() : Environment.GetEnvironmentVariable("PIPELINE_TOKEN")?.Trim();
        if (string.IsNullOrEmpty(token))
        {
            if (optional) return Actor.Engine;
            throw new LifecycleException(LifecycleErrors.NotAuthenticated, "this action needs your personal token: --token-file FILE or PIPELINE_TOKEN");
        }

        return engine.Lifecycle.People.Authenticate(token, "cli")
               ?? throw new LifecycleException(LifecycleErrors.NotAuthenticated, "the token matches nobody in the people file (people.file); ask the operator for yours");
    }

    /// <summary>Signs with <c>ssh-keygen -Y sign -n pipeline-freigabe -f KEY</c>; returns the armored signature.</summary>
    internal static string SshSign(byte[] statement, string keyFile)
    {
        var dir = Directory.CreateTempSubdirectory("freigabe-");
        try
        {
            var file = Path.Combine(dir.FullName, "statement.json");
            File.WriteAllBytes(file, statement);
            var psi = new System.Diagnostics.ProcessStartInfo("ssh-keygen", ["-q", "-Y", "sign", "-n", ApprovalStatement.SshNamespace, "-f", keyFile, file])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using var proc = System.Diagnostics.Process.Start(psi)!;
            var err = proc.StandardError.ReadToEnd();
            proc.WaitForExit();
            if (proc.ExitCode != 0 || !File.Exists(file + ".sig"))
                throw new LifecycleException(LifecycleErrors.SignatureInvalid, $"ssh-keygen could not sign with '{keyFile}': {err.Trim()}");
            return File.ReadAllText(file + ".sig");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static string State(DeliveryLifecycle d) =>
        LifecycleStore.StateText(d.State) + (d.Stage is null ? "" : $" in {d.Stage}") + (d.TargetStage is null ? "" : $" → {d.TargetStage}");

    internal static void PrintBoard(Board board, TextWriter o)
    {
        foreach (var p in board.Pipelines)
        {
            o.WriteLine($"pipeline {p.Pipeline}: {string.Join(" ► ", p.Stages.Select(s => $"{s.Name} [{s.Approval.Describe()}]"))}");
            if (p.Deliveries.Count == 0) o.WriteLine("  (no accepted delivery yet)");
            foreach (var e in p.Deliveries)
            {
                var d = e.Delivery;
                o.WriteLine($"  {d.Tag,-12} {d.DeliveryId}  {LifecycleStore.StateText(d.State),-17} {d.StageText,-12} {string.Join(" ", d.Digests.Select(x => x.Length > 19 ? x[..19] + "…" : x))}");
                if (e.WaitingFor is not null) o.WriteLine($"  {"",-12} waits for: {e.WaitingFor}");
                if (d.Reason is not null && d.IsClosed) o.WriteLine($"  {"",-12} {d.ReasonCode}: {d.Reason}");
            }

            o.WriteLine();
        }
    }
}
