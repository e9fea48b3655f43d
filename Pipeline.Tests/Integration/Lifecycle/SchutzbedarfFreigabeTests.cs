using System.Text.Json.Nodes;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// With tenants, the Schutzbedarf of a pipeline raises its stages' Freigabe rules (never lowers
/// them): a sehr-hoch application's unsigned Freigabe into Abnahme (whose own rule needs no
/// signature) is refused, a signed one counts, and both signed statements name the effective rule.
/// </summary>
public class SchutzbedarfFreigabeTests : DeliveryFixture
{
    private const string Raised = "1 × verfahrensverantwortlich, four eyes, signed, valid 72h (raised by Schutzbedarf sehr-hoch)";

    [Test]
    public async Task A_sehr_hoch_pipeline_needs_a_signed_Freigabe_and_the_statements_name_the_effective_rule()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        File.AppendAllText(s.ConfigPath, $"\ntenants:\n  - id: land-a\n    name: Landesamt A\n    pipelines: [{s.Name}]\n");
        sc.PeopleIn("land-a");
        File.AppendAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), "\nschutzbedarf: sehr-hoch\n");
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var report = (await s.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(Pipeline.Engine.Ledger.DeliveryStatus.Accepted), report.Reason);
        var id = report.DeliveryId;
        var digest = report.Images.Single()[(report.Images.Single().IndexOf('@') + 1)..];

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var (sam, anna) = (As(engine, "sam"), As(engine, "anna"));
        var plan = lc.PlanFor(s.Name);
        Assert.That(plan.Stages.Select(x => x.Approval.Describe()), Is.EqualTo(new[]
        {
            "automatic",
            Raised,
            "1 × verfahrensverantwortlich, four eyes, signed (raised by Schutzbedarf sehr-hoch)",
            "2 × verfahrensverantwortlich, four eyes, signed (raised by Schutzbedarf sehr-hoch)",
        }), "the first stage stays automatic; every Freigabe is signed; Produktion keeps its two approvers");

        await lc.RequestPromotionAsync(sam, id, "Abnahme", default);
        var input = new ApprovalInput(id, "Abnahme", [digest], "fachlich geprüft", null, null);
        await AssertRefused(() => lc.ApproveAsync(anna, input, default), LifecycleErrors.SignatureRequired, "a Freigabe into Abnahme must carry Anna Beispiel's own signature");
        Assert.That(await lc.GetApprovalsAsync(sam, id, default), Is.Empty, "the refused Freigabe was not recorded");

        var statement = await lc.ApprovalStatementAsync(anna, input, ApprovalDecision.Approve, default);
        var signature = LifecycleCommands.SshSign(statement.CanonicalBytes(), sc.AnnaKey.PrivateKeyPath);
        var outcome = await lc.ApproveAsync(anna, input with { Signature = new SignedApproval(statement.CanonicalBytes(), signature) }, default);
        Assert.That((outcome.RuleComplete, outcome.PromotionError, outcome.Delivery.Stage), Is.EqualTo((true, (string?)null, "Abnahme")));

        var entries = await engine.Ledger.ReadAsync(id, default);
        foreach (var stage in new[] { "request:Abnahme", "freigabe:Abnahme" })
        {
            var entry = entries.Single(e => e.Record.Stage == stage);
            var leaf = (await engine.Ledger.Log.GetLeafAsync(entry.LogIndex!.Value, default))!;
            var evidence = JsonNode.Parse(DsseEnvelope.Parse(leaf.Envelope).Payload)!["predicate"]!["evidence"]!;
            Assert.That(evidence["rule"]!.GetValue<string>(), Is.EqualTo(Raised), $"the signed {stage} statement names the effective rule");
        }
    }

    [Test]
    public async Task Pipeline_check_reports_approval_floor_errors_and_then_tenancy_errors_at_once_with_lines()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        sc.PeopleIn("land-a");
        var config = File.ReadAllText(s.ConfigPath) + "\ntenants:\n  - id: land-a\n    name: Landesamt A\n    pipelines: [geister-verfahren]\n";
        File.WriteAllText(s.ConfigPath, config + """
            approvalFloors:
              hoch: { approvers: 3, finalApprovers: 2 }
              sehr-hoch: { signed: false, quorum: 2 }
            """);
        var (rc, stdout, err) = await Check(s.ConfigPath);
        Assert.That((rc, stdout), Is.EqualTo((PipelineCli.ConfigError, "")), err);
        Assert.That(err, Does.StartWith("CFG-INVALID: 3 configuration error(s):"));
        var lines = File.ReadAllLines(s.ConfigPath).ToList();
        int Line(string text) => lines.FindIndex(l => l.Contains(text, StringComparison.Ordinal)) + 1;
        Assert.That(err, Does.Contain($"{s.ConfigPath}:{Line("hoch: { approvers: 3")}:").And.Contain("'approvalFloors.hoch.finalApprovers' (2) must not be less than 'approvalFloors.hoch.approvers' (3)"));
        Assert.That(err, Does.Contain($"{s.ConfigPath}:{Line("sehr-hoch: {")}:").And.Contain("'approvalFloors.sehr-hoch' must be at least as strict as 'hoch'"));
        Assert.That(err, Does.Contain("unknown key 'approvalFloors.sehr-hoch.quorum'"));

        // engine.yaml valid: the tenancy checks against the pipelines, every error at once.
        File.WriteAllText(s.ConfigPath, config);
        (rc, stdout, err) = await Check(s.ConfigPath);
        Assert.That((rc, stdout), Is.EqualTo((PipelineCli.ConfigError, "")), err);
        Assert.That(err, Does.StartWith("CFG-INVALID: 3 configuration error(s):"));
        Assert.That(err, Does.Contain($"{s.ConfigPath}:").And.Contain("tenant 'land-a' names the pipeline 'geister-verfahren', which is not configured"));
        Assert.That(err, Does.Contain($"pipelines/{s.Name}.yaml:1:").And.Contain($"pipeline '{s.Name}' belongs to no tenant"));
        Assert.That(err, Does.Contain($"pipeline '{s.Name}' declares no 'schutzbedarf'"));

        // Fixed: check passes.
        File.WriteAllText(s.ConfigPath, config.Replace("geister-verfahren", s.Name, StringComparison.Ordinal));
        File.AppendAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), "\nschutzbedarf: hoch\n");
        (rc, stdout, err) = await Check(s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(stdout, Does.StartWith("configuration OK"));
    }

    private static async Task<(int Rc, string Out, string Err)> Check(string config)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync(["check", "--config", config], o, e);
        return (rc, o.ToString(), e.ToString());
    }
}
