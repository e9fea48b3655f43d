using Pipeline.Engine.Deploy;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Integration.Lifecycle;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// A Docker Vorprüfung through the lifecycle, on the real dockerd: the delivery's app (built by
/// the intake on a busybox base), its acceptance test with test data, evidence in the log, and a
/// failing acceptance test that blocks the Freigabe of the next stage.
/// </summary>
public class DockerStageDeploymentTests : DeliveryFixture
{
    private static void WriteDelivery(Scenario s, string baseImage, string version, string expected)
    {
        s.Supplier.Write("bin/app", "#!/bin/sh\nexec /bin/busybox httpd -f -p 8080 -h /opt/app/www\n");
        File.SetUnixFileMode(Path.Combine(s.Supplier.WorkTree, "bin", "app"), (UnixFileMode)0b111_101_101);
        s.Supplier.Write("www/version", $"app {version}\n");
        s.Supplier.Write("tests/data/expected-version", expected + "\n");
        s.Supplier.Write("deploy/k8s/deployment.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: app}
            spec:
              selector: {matchLabels: {app: app}}
              template:
                metadata: {labels: {app: app}}
                spec:
                  securityContext: {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
                  containers:
                    - name: app
                      image: app
                      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
            """);
        s.Supplier.Write("delivery.yaml", $$"""
            version: 1
            images:
              - name: app
                base: {{baseImage}}
                files:
                  - from: bin
                    to: /opt/app
                  - from: www
                    to: /opt/app/www
                entrypoint: [/opt/app/app]
                user: "10001:10001"
            deployment:
              manifests: deploy/k8s
              acceptanceTests:
                image: app
                command: [/bin/sh, -c, "for i in 1 2 3 4 5 6 7 8 9 10; do v=$(/bin/busybox wget -q -O - http://app:8080/version) && break; /bin/busybox sleep 0.3; done; echo \"saw: $v\"; echo \"$v\" | /bin/busybox grep -qF \"$(/bin/busybox cat /testdata/expected-version)\""]
                testData: tests/data
                timeout: 60s
            """);
        s.Supplier.WriteChecksums();
    }

    [Test]
    public async Task The_acceptance_test_runs_in_the_Docker_stage_and_a_failing_one_blocks_the_next_Freigabe()
    {
        var docker = TestServices.Require("PIPELINE_DOCKER_HOST");
        using var work = new TempDir();
        var baseRef = await DockerTestImages.PushBusyboxAsync(Harness.Registry, work.Path, "pipeline-tests/busybox-base", user: null);
        var baseImage = baseRef[(baseRef.IndexOf('/') + 1)..];
        var sc = new LifecycleScenario(Harness, $"""
            stages:
              - name: Vorprüfung
                approval: {"{"} automatic: true {"}"}
                environment: {"{"} kind: docker, endpoint: "{docker}", network: vptest, memory: 64MiB, cpus: "0.5", user: "10001:10001", healthTimeout: 30s, testTimeout: 90s {"}"}
              - name: Abnahme
            """);
        var s = sc.S;
        s.WriteDefinition(extraAllowedBase: baseImage);

        WriteDelivery(s, baseImage, "v1.0.0", "app v1.0.0");
        s.Publish("v1.0.0");
        var good = (await s.RunAsync()).Deliveries.Single();
        Assert.That(good.Status, Is.EqualTo(DeliveryStatus.Accepted), good.Reason);

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var sam = As(engine, "sam");
        var d = await lc.GetAsync(sam, good.DeliveryId, default);
        Assert.That((d.Stage, d.Result.Result), Is.EqualTo(("Vorprüfung", "verified")), d.Reason);
        var entries = await engine.Ledger.ReadAsync(good.DeliveryId, default);
        var tests = entries.Single(e => e.Record.Stage == "verification:Vorprüfung").Record;
        Assert.That(tests.Verdict, Is.EqualTo(Verdict.Passed));
        Assert.That(tests.Evidence["container.test.exitCode"], Is.EqualTo("0"));
        Assert.That(tests.Evidence["container.test.logDigest"], Does.StartWith("sha256:"));
        Assert.That(tests.Evidence["container.app.image"], Is.EqualTo(d.Images.Single().Reference), "the app ran by the digest in the stage");
        Assert.That(tests.Evidence["cleanedUp"], Is.EqualTo("true"));
        Assert.That(entries.Single(e => e.Record.Stage == "deploy:Vorprüfung").Record.Verdict, Is.EqualTo(Verdict.Passed));
        await lc.RequestPromotionAsync(sam, good.DeliveryId, "Abnahme", default);

        // The next version's test expects another version: the test fails, the stage fails, Abnahme is blocked.
        WriteDelivery(s, baseImage, "v1.1.0", "app v9.9.9");
        s.Publish("v1.1.0");
        var bad = (await s.RunAsync()).Deliveries.Single(x => x.Tag == "v1.1.0");
        Assert.That(bad.Status, Is.EqualTo(DeliveryStatus.Accepted), bad.Reason);
        var b = await lc.GetAsync(sam, bad.DeliveryId, default);
        Assert.That((b.Stage, b.Result.Result, b.ReasonCode), Is.EqualTo(("Vorprüfung", "failed", "DEPLOY-DOCKER-TEST-FAILED")), b.Reason);
        var failed = (await engine.Ledger.ReadAsync(bad.DeliveryId, default)).Single(e => e.Record.Stage == "verification:Vorprüfung").Record;
        Assert.That((failed.Verdict, failed.Evidence["container.test.exitCode"]), Is.EqualTo((Verdict.Failed, "1")));
        await AssertRefused(() => lc.RequestPromotionAsync(sam, bad.DeliveryId, "Abnahme", default), DeployErrors.StageFailed, "failed in Vorprüfung (DEPLOY-DOCKER-TEST-FAILED");
    }
}
