using Pipeline.Engine.Approvals;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// Abnahme has its own registry (the real one behind a proxy that fails on demand). The registry
/// fails in the middle of the copy (blobs written, manifests refused): nothing is tagged, the
/// promotion stays approved, and the resume completes it exactly once.
/// </summary>
public class LifecycleRegistryOutageTests : DeliveryFixture
{
    [Test]
    public async Task A_registry_failing_mid_copy_promotes_nothing_and_a_retry_completes_once()
    {
        await using var proxy = new FaultyRegistryProxy(Harness.Registry);
        var sc = new LifecycleScenario(Harness, LifecycleScenario.Stages.Replace(
            "  - name: Abnahme\n", $"  - name: Abnahme\n    registry: {{ url: \"http://{proxy.Host}\" }}\n", StringComparison.Ordinal));
        var s = sc.S;
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var report = (await s.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(DeliveryStatus.Accepted), report.Reason);
        var digest = report.Images.Single()[(report.Images.Single().IndexOf('@') + 1)..];
        var id = report.DeliveryId;

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        await lc.RequestPromotionAsync(As(engine, "sam"), id, "Abnahme", default);

        proxy.Fail = (method, path) => method == "PUT" && path.Contains("/manifests/", StringComparison.Ordinal);
        var outcome = await lc.ApproveAsync(As(engine, "anna"), new ApprovalInput(id, "Abnahme", null, null, null, null), default);
        Assert.That(outcome.RuleComplete, Is.True);
        Assert.That(outcome.PromotionError, Does.StartWith("LC-PROMOTE-REGISTRY: the copy into stage Abnahme").And.Contain("nothing was tagged"));
        Assert.That(proxy.Failed, Is.GreaterThan(0));
        Assert.That(proxy.Forwarded, Has.Some.Matches<(string Method, string Path)>(f => f.Method == "PUT" && f.Path.Contains("/blobs/uploads/", StringComparison.Ordinal)),
            "the copy failed in the middle: blobs had reached the registry");
        var d = await lc.GetAsync(Actor.Engine, id, default);
        Assert.That((d.State, d.Stage, d.TargetStage), Is.EqualTo((LifecycleState.Promoting, "Vorprüfung", "Abnahme")));
        Assert.That(SkopeoFinds($"{Harness.Registry}/abnahme/{s.RegistryRepository}:abnahme"), Is.False, "the stage tag did not move");
        var board = await lc.GetBoardAsync(Actor.Engine, s.Name, default);
        Assert.That(board.Pipelines.Single().Deliveries.Single().WaitingFor, Does.Contain("the copy into Abnahme").And.Contain("last error: LC-PROMOTE-REGISTRY"));

        // Still down: the next pass fails the same way and changes nothing.
        Assert.That(await lc.ResumeAsync(s.Name, default), Is.Empty);

        proxy.Fail = null;
        var (resumed, second) = (await lc.ResumeAsync(s.Name, default), await lc.ResumeAsync(s.Name, default));
        Assert.That(resumed.Single().Stage, Is.EqualTo("Abnahme"));
        Assert.That(second, Is.Empty, "exactly once");
        Assert.That((await lc.GetHistoryAsync(Actor.Engine, id, default)).Count(h => h.Step == "promotion:Abnahme"), Is.EqualTo(1));
        Assert.That(SkopeoDigest($"{Harness.Registry}/abnahme/{s.RegistryRepository}:abnahme"), Is.EqualTo(digest));
    }
}
