using System.Text.Json.Nodes;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Lifecycle;
using Pipeline.Engine.Tenancy;
using Pipeline.Tests.Integration.Lifecycle;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// Tenants and Schutzbedarf decide where a delivery may be deployed: a sehr-hoch application is
/// deployed into the GitOps environment dedicated to its tenant (the signed check statement names
/// the rule that allowed it) and refused for a shared environment with TENANT-NOT-DEDICATED when the
/// promotion is requested, before anything reaches that stage.
/// </summary>
public class TenantPlacementTests : DeliveryFixture
{
    private static string Stages(GitOpsFixture env, string abnahmeHosts = "maxSchutzbedarf: sehr-hoch, dedicatedTo: shared") => $"""
        stages:
          - name: Vorprüfung
            approval: {"{"} automatic: true {"}"}
            environment:
              kind: gitops
              repository: {env.Url}
              credentialsFile: {env.CredentialsFile}
              path: vorpruefung/app
              namespace: app-vp
              signingKey: {env.KeyFile}
              hosts: {"{"} maxSchutzbedarf: sehr-hoch, dedicatedTo: land-a {"}"}
          - name: Abnahme
            environment:
              kind: gitops
              repository: {env.Url}
              credentialsFile: {env.CredentialsFile}
              path: abnahme/app
              namespace: app-abnahme
              signingKey: {env.KeyFile}
              hosts: {"{"} {abnahmeHosts} {"}"}
          - name: Produktion
            approval: {"{"} approvers: 1 {"}"}
        """;

    /// <summary>An accepted delivery of a land-a application of <paramref name="level"/>, with the stages given.</summary>
    private async Task<(Scenario S, Guid Id, string Digest)> AcceptedInLandA(string stages, string level)
    {
        var sc = new LifecycleScenario(Harness, stages);
        var s = sc.S;
        File.AppendAllText(s.ConfigPath, $"\ntenants:\n  - id: land-a\n    name: Landesamt A\n    pipelines: [{s.Name}]\n");
        sc.PeopleIn("land-a");
        File.AppendAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), $"\nschutzbedarf: {level}\n");
        StageDeploymentTests.WriteDeliveryWithDeployment(s);
        s.Publish("v1.0.0");
        var report = (await s.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(Pipeline.Engine.Ledger.DeliveryStatus.Accepted), report.Reason);
        var image = report.Images.Single();
        return (s, report.DeliveryId, image[(image.IndexOf('@') + 1)..]);
    }

    [Test]
    public async Task A_sehr_hoch_application_is_deployed_only_into_its_tenants_dedicated_environment_and_the_statement_names_the_rule()
    {
        using var env = new GitOpsFixture();
        var (s, id, digest) = await AcceptedInLandA(Stages(env), "sehr-hoch");

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var (sam, anna) = (As(engine, "sam"), As(engine, "anna"));

        // Vorprüfung is dedicated to land-a: allowed, deployed, and the signed check statement says why.
        var d = await lc.GetAsync(sam, id, default);
        Assert.That((d.Stage, d.Result.Result, d.ReasonCode), Is.EqualTo(("Vorprüfung", "verified", (string?)null)), d.Reason);
        var check = (await engine.Ledger.ReadAsync(id, default)).Single(e => e.Record.Stage == "check:Vorprüfung");
        var leaf = (await engine.Ledger.Log.GetLeafAsync(check.LogIndex!.Value, default))!;
        var evidence = JsonNode.Parse(DsseEnvelope.Parse(leaf.Envelope).Payload)!["predicate"]!["evidence"]!;
        Assert.That((evidence["placement.rule"]!.GetValue<string>(), evidence["placement.schutzbedarf"]!.GetValue<string>(), evidence["placement.tenant"]!.GetValue<string>()),
            Is.EqualTo((PlacementDecision.RuleDedicated, "sehr-hoch", "land-a")), "the signed statement carries the decision");
        Assert.That(evidence["placement.decision"]!.GetValue<string>(), Is.EqualTo("allowed"));
        Assert.That(Directory.Exists(Path.Combine(env.Clone(), "vorpruefung", "app")), Is.True);

        // Abnahme is shared: sehr hoch is refused when the promotion is requested, so nothing reaches
        // the shared stage's registry or environment, and the delivery stays verified in Vorprüfung.
        await AssertRefused(() => lc.RequestPromotionAsync(sam, id, "Abnahme", default), TenancyErrors.NotDedicated, "only into environments dedicated to its tenant");
        d = await lc.GetAsync(sam, id, default);
        Assert.That((d.Stage, d.Result.Result, d.TargetStage), Is.EqualTo(("Vorprüfung", "verified", (string?)null)), "the refused request changed nothing");
        Assert.That(Directory.Exists(Path.Combine(env.Clone(), "abnahme")), Is.False, "nothing was deployed into the shared environment");
        var history = await lc.GetHistoryAsync(sam, id, default);
        Assert.That(history.Select(e => e.Step), Has.None.EndsWith(":Abnahme"), "no request, promotion or deployment into Abnahme was recorded");
        var registry = Shell.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", $"docker://{Harness.Registry}/abnahme/{s.RegistryRepository}@{digest}"]);
        Assert.That(registry.ExitCode, Is.Not.Zero, "the image was not copied into the shared stage's repository");
        Assert.That(registry.Stderr, Does.Match("manifest unknown|name unknown"), "skopeo found no such image (not some other error)");
        var trace = await engine.Audit.TraceAsync(id.ToString("D"), default);
        Assert.That(trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems), Is.Empty, "every statement verifies in the log");
    }

    [Test]
    public async Task A_placement_that_became_refused_between_request_and_Freigabe_copies_nothing_and_is_a_signed_failed_promotion()
    {
        const string sharedUpToHoch = "maxSchutzbedarf: hoch, dedicatedTo: shared";
        using var env = new GitOpsFixture();
        var (s, id, digest) = await AcceptedInLandA(Stages(env, sharedUpToHoch), "hoch");

        await using (var before = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default))
            await before.Lifecycle.RequestPromotionAsync(As(before, "sam"), id, "Abnahme", default);

        // The operator lowers the shared Abnahme environment to normal while the request waits for its Freigabe.
        var config = File.ReadAllText(s.ConfigPath);
        Assert.That(config, Does.Contain(sharedUpToHoch), "the test edits the Abnahme environment it configured");
        File.WriteAllText(s.ConfigPath, config.Replace(sharedUpToHoch, "maxSchutzbedarf: normal, dedicatedTo: shared", StringComparison.Ordinal));

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var outcome = await lc.ApproveAsync(As(engine, "anna"), new ApprovalInput(id, "Abnahme", [digest], "ok", null, null), default);
        Assert.That(outcome.PromotionError, Does.StartWith(TenancyErrors.SchutzbedarfTooHigh + ":").And.Contain("Abnahme"));
        Assert.That(outcome.PromotionError!.Split(TenancyErrors.SchutzbedarfTooHigh).Length, Is.EqualTo(2), "the code is named once, not repeated inside the message");
        Assert.That(outcome.Delivery.Stage, Is.EqualTo("Vorprüfung"), "the delivery did not enter Abnahme");
        Assert.That(SkopeoFinds($"{Harness.Registry}/abnahme/{s.RegistryRepository}@{digest}"), Is.False, "nothing was copied into the shared stage's registry");
        Assert.That(Directory.Exists(Path.Combine(env.Clone(), "abnahme")), Is.False, "nothing was deployed into the shared environment");
        var failed = (await lc.GetHistoryAsync(As(engine, "sam"), id, default)).Single(e => e.Step == "promotion:Abnahme");
        Assert.That((failed.Verdict, failed.ReasonCode), Is.EqualTo(("failed", TenancyErrors.SchutzbedarfTooHigh)), "the refusal is a signed failed promotion statement");
        var trace = await engine.Audit.TraceAsync(id.ToString("D"), default);
        Assert.That(trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems), Is.Empty, "every statement verifies in the log");
    }

    [Test]
    public async Task The_engine_does_not_start_with_a_pipeline_outside_every_tenant_and_says_where()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        File.AppendAllText(s.ConfigPath, "\ntenants:\n  - id: land-a\n    name: Landesamt A\n    pipelines: [geister-verfahren]\n");
        sc.PeopleIn("land-a");
        var e = await Assert.ThrowsAsync<Pipeline.Engine.Configuration.ConfigurationException>(() => PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default));
        var text = e!.Errors.Select(x => x.ToString()).ToList();
        Assert.That(text, Has.One.StartsWith(s.ConfigPath + ":").And.Contains("names the pipeline 'geister-verfahren', which is not configured"));
        Assert.That(text, Has.One.Contains($"pipelines/{s.Name}.yaml:1:").And.Contains($"pipeline '{s.Name}' belongs to no tenant"));
        Assert.That(text, Has.One.Contains($"pipeline '{s.Name}' declares no 'schutzbedarf'"));
    }
}
