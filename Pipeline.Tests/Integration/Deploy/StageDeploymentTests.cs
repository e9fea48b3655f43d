using Pipeline.Engine.Approvals;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Integration.Lifecycle;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// A real delivery with a deployment section goes through GitOps stages: after each promotion its
/// manifests are checked, rendered for the stage and committed (signed) to the environment
/// repository, and the stage's HTTP probe verifies it; a failed probe reverts the environment and
/// blocks the next promotion; an engine stopped between the commit and the verification resumes it
/// exactly once. Checked with git verify-commit, kubectl kustomize and the audit trace.
/// </summary>
public class StageDeploymentTests : DeliveryFixture
{
    private static string Stages(GitOpsFixture env, Uri vorpruefungProbe, Uri abnahmeProbe, bool automatic) => $"""
        stages:
          - name: Vorprüfung
            approval: {(automatic ? "{ automatic: true }" : "{ approvers: 1 }")}
            environment:
              kind: gitops
              repository: {env.Url}
              credentialsFile: {env.CredentialsFile}
              path: vorpruefung/app
              namespace: app-vp
              signingKey: {env.KeyFile}
              committer: {"{"} name: Pipeline Vorpruefung, email: deploy@stage.example {"}"}
              parameters: {"{"} replicas: "1" {"}"}
              probe: {"{"} url: "{vorpruefungProbe}", expectVersion: "{"{tag}"}", timeout: 60s, interval: 100ms {"}"}
          - name: Abnahme
            environment:
              kind: gitops
              repository: {env.Url}
              credentialsFile: {env.CredentialsFile}
              path: abnahme/app
              namespace: app-abnahme
              signingKey: {env.KeyFile}
              committer: {"{"} name: Pipeline Abnahme, email: deploy@stage.example {"}"}
              probe: {"{"} url: "{abnahmeProbe}", timeout: 2s, interval: 100ms {"}"}
          - name: Produktion
            approval: {"{"} approvers: 1 {"}"}
        """;

    internal static void WriteDeliveryWithDeployment(Scenario s)
    {
        s.WriteGoodDelivery();
        s.Supplier.Write("delivery.yaml", $"""
            version: 1
            images:
              - name: app
                base: {s.Harness.BaseImage}
                files:
                  - from: bin
                    to: /opt/app
                entrypoint: [/opt/app/app]
                user: "10001:10001"
                ports: [8080]
            deployment:
              manifests: deploy/k8s
              parameters:
                - name: replicas
                  kind: replicas
                  default: "3"
                  targets:
                    - {"{"}kind: Deployment, name: app, path: spec.replicas{"}"}
            """);
        s.Supplier.Write("deploy/k8s/deployment.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: app
              labels: {app: app}
            spec:
              replicas: 3
              selector:
                matchLabels: {app: app}
              template:
                metadata:
                  labels: {app: app}
                spec:
                  securityContext:
                    runAsNonRoot: true
                    runAsUser: 10001
                    seccompProfile: {type: RuntimeDefault}
                  containers:
                    - name: app
                      image: app
                      ports:
                        - containerPort: 8080
                      securityContext:
                        allowPrivilegeEscalation: false
                        readOnlyRootFilesystem: true
                        capabilities:
                          drop: [ALL]
            """);
        s.Supplier.WriteChecksums();
    }

    private static async Task<(LifecycleScenario Sc, Guid Id, string Digest)> AcceptedAsync(DeliveryHarness harness, GitOpsFixture env, Uri vp, Uri abnahme, bool automatic)
    {
        var sc = new LifecycleScenario(harness, Stages(env, vp, abnahme, automatic));
        WriteDeliveryWithDeployment(sc.S);
        sc.S.Publish("v1.0.0");
        var report = (await sc.S.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(Pipeline.Engine.Ledger.DeliveryStatus.Accepted), report.Reason);
        var pushed = report.Images.Single();
        return (sc, report.DeliveryId, pushed[(pushed.IndexOf('@') + 1)..]);
    }

    [Test]
    public async Task Each_stage_is_checked_deployed_by_a_signed_commit_and_verified_and_a_failed_probe_reverts_and_blocks_the_next_stage()
    {
        using var env = new GitOpsFixture();
        await using var vp = await VersionEndpoint.StartAsync();
        await using var abnahme = await VersionEndpoint.StartAsync();
        vp.Answers.Enqueue((200, "{\"version\":\"v1.0.0\"}"));
        abnahme.Answers.Enqueue((200, "{\"version\":\"v0.9.0\"}"));
        var (sc, id, digest) = await AcceptedAsync(Harness, env, vp.Url, abnahme.Url, automatic: true);
        var s = sc.S;

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var (sam, anna) = (As(engine, "sam"), As(engine, "anna"));

        // Vorprüfung (automatic): promoted, checked, committed, probed.
        var d = await lc.GetAsync(sam, id, default);
        Assert.That((d.Stage, d.Result.Result, d.ReasonCode), Is.EqualTo(("Vorprüfung", "verified", (string?)null)), d.Reason);
        var steps = (await lc.GetHistoryAsync(sam, id, default)).Select(e => $"{e.Step} {e.Verdict}").ToList();
        Assert.That(steps, Is.SupersetOf(new[] { "promotion:Vorprüfung passed", "check:Vorprüfung passed", "deploy:Vorprüfung passed", "verification:Vorprüfung passed" }));
        Assert.That(steps.IndexOf("check:Vorprüfung passed"), Is.LessThan(steps.IndexOf("deploy:Vorprüfung passed")));
        Assert.That(steps.IndexOf("deploy:Vorprüfung passed"), Is.LessThan(steps.IndexOf("verification:Vorprüfung passed")));

        var clone = env.Clone();
        var verify = env.VerifyCommit(clone, "HEAD");
        Assert.That(verify.ExitCode, Is.EqualTo(0), verify.Stderr);
        Assert.That(Shell.Git(clone, "log", "-1", "--format=%B").Stdout, Does.Contain(id.ToString("D")).And.Contain("v1.0.0").And.Contain(digest));
        var kustomize = Shell.Run("kubectl", ["kustomize", Path.Combine(clone, "vorpruefung", "app")]);
        Assert.That(kustomize.ExitCode, Is.EqualTo(0), kustomize.Stderr);
        Assert.That(kustomize.Stdout, Does.Contain($"image: {Harness.Registry}/vorpruefung/{s.RegistryRepository}@{digest}"), "pinned by the promoted digest in the stage's repository");
        Assert.That(kustomize.Stdout, Does.Contain("namespace: app-vp").And.Contain("replicas: 1"), "the operator's overlay: namespace and parameters");
        var deployed = (await engine.Ledger.ReadAsync(id, default)).Single(e => e.Record.Stage == "deploy:Vorprüfung");
        Assert.That(deployed.Record.Evidence["environment.commit"], Is.EqualTo(Shell.Git(clone, "rev-parse", "HEAD").Stdout.Trim()));
        Assert.That(deployed.Record.Evidence["images"], Does.Contain(digest));
        Assert.That(vp.Hits, Is.GreaterThanOrEqualTo(1));

        // Abnahme: the probe sees an old version: failed, reverted, and Produktion is blocked.
        await lc.RequestPromotionAsync(sam, id, "Abnahme", default);
        var outcome = await lc.ApproveAsync(anna, new ApprovalInput(id, "Abnahme", [digest], "ok", null, null), default);
        d = outcome.Delivery;
        Assert.That((d.Stage, d.Result.Result, d.ReasonCode), Is.EqualTo(("Abnahme", "failed", DeployErrors.ProbeFailed)));
        Assert.That(d.Reason, Does.Contain("without the version 'v1.0.0'").And.Contain("reverted to its previous state"));
        var after = env.Clone();
        Assert.That(Directory.Exists(Path.Combine(after, "abnahme")), Is.False, "the revert removed what the failed deployment wrote (the folder did not exist before)");
        Assert.That(Directory.Exists(Path.Combine(after, "vorpruefung", "app")), Is.True, "other stages' folders stay");
        Assert.That(env.VerifyCommit(after, "HEAD").ExitCode, Is.EqualTo(0), "the revert commit is signed");
        Assert.That(env.VerifyCommit(after, "HEAD~1").ExitCode, Is.EqualTo(0), "and so is the deployment it reverts");
        Assert.That(Shell.Git(after, "log", "-1", "--format=%s").Stdout.Trim(), Does.StartWith("Revert"));

        await AssertRefused(() => lc.RequestPromotionAsync(sam, id, "Produktion", default), DeployErrors.StageFailed, "failed in Abnahme (DEPLOY-PROBE-FAILED");
        var board = await lc.GetBoardAsync(sam, s.Name, default);
        Assert.That(board.Pipelines.Single().Deliveries.Single().WaitingFor, Does.StartWith(DeployErrors.StageFailed));
        var history = await lc.GetHistoryAsync(sam, id, default);
        var failed = history.Single(e => e.Step == "verification:Abnahme");
        Assert.That((failed.Verdict, failed.ReasonCode), Is.EqualTo(("failed", DeployErrors.ProbeFailed)));

        var trace = await engine.Audit.TraceAsync(id.ToString("D"), default);
        Assert.That(trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems), Is.Empty, "every deployment statement verifies in the log");
    }

    [Test]
    public async Task An_engine_stopped_between_the_commit_and_the_verification_verifies_exactly_once_after_the_restart()
    {
        using var env = new GitOpsFixture();
        await using var vp = await VersionEndpoint.StartAsync();
        vp.Answers.Enqueue((503, "rolling out"));
        var (sc, id, digest) = await AcceptedAsync(Harness, env, vp.Url, vp.Url, automatic: false);
        var s = sc.S;

        await using (var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default))
        {
            var lc = engine.Lifecycle;
            await lc.RequestPromotionAsync(As(engine, "sam"), id, "Vorprüfung", default);
            using var stop = new CancellationTokenSource();
            // Stop the engine as soon as the environment commit is recorded (the probe still sees 503).
            var watcher = Task.Run(async () =>
            {
                var deadline = DateTime.UtcNow.AddMinutes(2);
                while (DateTime.UtcNow < deadline && (await lc.GetAsync(As(engine, "sam"), id, default)).Result.Result != "deployed")
                    await Task.Delay(50);
                await stop.CancelAsync();
            });
            Assert.That(async () => await lc.ApproveAsync(As(engine, "anna"), new ApprovalInput(id, "Vorprüfung", [digest], "ok", null, null), stop.Token),
                Throws.InstanceOf<OperationCanceledException>());
            await watcher;
            var d = await lc.GetAsync(As(engine, "sam"), id, default);
            Assert.That((d.Stage, d.Result.Result), Is.EqualTo(("Vorprüfung", "deployed")), "committed, not yet verified");
            await AssertRefused(() => lc.RequestPromotionAsync(As(engine, "sam"), id, "Abnahme", default), DeployErrors.StageUnverified, "not yet verified");
        }

        vp.Answers.Enqueue((200, "v1.0.0"));
        await using (var restarted = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default))
        {
            var lc = restarted.Lifecycle;
            var resumed = await Task.WhenAll(lc.ResumeAsync(null, default), lc.ResumeAsync(null, default));
            Assert.That(resumed.SelectMany(r => r).Count(r => r.DeliveryId == id && r.Result.Result == "verified"), Is.GreaterThanOrEqualTo(1));
            Assert.That(await lc.ResumeAsync(null, default), Is.Empty, "nothing left to resume");
            var d = await lc.GetAsync(As(restarted, "sam"), id, default);
            Assert.That(d.Result.Result, Is.EqualTo("verified"));
            var history = await lc.GetHistoryAsync(As(restarted, "sam"), id, default);
            Assert.That(history.Count(e => e.Step == "deploy:Vorprüfung"), Is.EqualTo(1), "deployed once");
            Assert.That(history.Count(e => e.Step == "verification:Vorprüfung"), Is.EqualTo(1), "verified exactly once, though two resumes raced");
            Assert.That(Shell.Git(env.Clone(), "rev-list", "--count", "HEAD").Stdout.Trim(), Is.EqualTo("1"), "one commit in the environment");
            await lc.RequestPromotionAsync(As(restarted, "sam"), id, "Abnahme", default);
        }
    }

    [Test]
    public async Task A_push_the_environment_refuses_pauses_the_stage_with_its_code_and_the_next_pass_deploys_it()
    {
        using var env = new GitOpsFixture();
        await using var vp = await VersionEndpoint.StartAsync();
        vp.Answers.Enqueue((200, "v1.0.0"));
        var hook = Path.Combine(env.Bare, "hooks", "pre-receive");
        File.WriteAllText(hook, "#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0b111_101_101);
        var (sc, id, digest) = await AcceptedAsync(Harness, env, vp.Url, vp.Url, automatic: false);

        await using var engine = await PipelineEngine.StartAsync(sc.S.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        await lc.RequestPromotionAsync(As(engine, "sam"), id, "Vorprüfung", default);
        var d = (await lc.ApproveAsync(As(engine, "anna"), new ApprovalInput(id, "Vorprüfung", [digest], "ok", null, null), default)).Delivery;
        Assert.That((d.Stage, d.Result.Result, d.ReasonCode), Is.EqualTo(("Vorprüfung", "promoted", DeployErrors.PushRejected)));
        Assert.That(d.Reason, Does.Contain("refused the push to branch main: pre-receive hook declined"));
        Assert.That((await lc.GetHistoryAsync(As(engine, "sam"), id, default)).Select(e => e.Step), Has.None.StartsWith("deploy:"), "nothing was recorded as deployed");
        await AssertRefused(() => lc.RequestPromotionAsync(As(engine, "sam"), id, "Abnahme", default), DeployErrors.StageUnverified, "last attempt: DEPLOY-GITOPS-PUSH-REJECTED");

        File.Delete(hook);
        await lc.ResumeAsync(null, default);
        d = await lc.GetAsync(As(engine, "sam"), id, default);
        Assert.That((d.Result.Result, d.ReasonCode), Is.EqualTo(("verified", (string?)null)));
        Assert.That(env.VerifyCommit(env.Clone(), "HEAD").ExitCode, Is.EqualTo(0));
    }
}
