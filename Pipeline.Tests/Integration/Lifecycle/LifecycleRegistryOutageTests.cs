using Pipeline.Engine.Approvals;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Engine.Notifications;
using Pipeline.Tests.Engine.Notifications;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// Abnahme has its own registry (the real one behind a proxy that fails on demand). The registry
/// fails in the middle of the copy (blobs written, manifests refused): nothing is tagged, the
/// promotion stays approved, and the resume completes it exactly once. The failure is one signed
/// failed statement with its code (not one per retry), shown on the board and in the trace, and
/// one stage-failed webhook event.
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
        var secret = System.Text.Encoding.UTF8.GetBytes("webhook-secret-0123456789abcdef");
        await using var receiver = await WebhookReceiver.StartAsync(secret);
        var secretFile = Path.Combine(s.Root, "hook.secret");
        await File.WriteAllBytesAsync(secretFile, secret);
        await using var source = LedgerStore.CreateDataSource(engine.Settings.Database.ConnectionString, engine.Settings.Database.PasswordFile);
        await using var notifier = new WebhookNotifier(new NotificationSettings([new WebhookSettings("ops", receiver.Url, secretFile, [NotificationEvents.StageFailed])],
            TimeSpan.FromSeconds(10), 3), source, false, Path.Combine(s.Root, "notify"), TimeProvider.System, Serilog.Core.Logger.None, baseDelay: TimeSpan.FromMilliseconds(20));
        await notifier.PollOnceAsync(default);

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

        // Still down: the next pass fails the same way and changes nothing (no second failed statement).
        Assert.That(await lc.ResumeAsync(s.Name, default), Is.Empty);
        Assert.That(await lc.ResumeAsync(s.Name, default), Is.Empty);
        var failed = (await engine.Ledger.ReadAsync(id, default)).Where(e => e.Record.Stage == "promotion:Abnahme").ToList();
        Assert.That(failed.Select(e => (e.Record.Verdict, e.Record.ReasonCode, e.Record.Evidence["actor"])),
            Is.EqualTo(new[] { (Verdict.Failed, "LC-PROMOTE-REGISTRY", "pipeline-engine") }), "one signed failed statement for the episode, not one per retry");
        Assert.That(failed.Single().LogIndex, Is.Not.Null, "signed into the transparency log");
        Assert.That(failed.Single().Record.Reason, Does.StartWith("the copy into stage Abnahme"));
        Assert.That(await notifier.PollOnceAsync(default), Is.EqualTo(1));
        var hit = receiver.Hits.Single();
        var body = System.Text.Json.Nodes.JsonNode.Parse(hit.Body)!;
        Assert.That((hit.Event, hit.SignatureValid, body["stage"]!.GetValue<string>(), body["reasonCode"]!.GetValue<string>()),
            Is.EqualTo((NotificationEvents.StageFailed, true, "Abnahme", "LC-PROMOTE-REGISTRY")));

        proxy.Fail = null;
        var (resumed, second) = (await lc.ResumeAsync(s.Name, default), await lc.ResumeAsync(s.Name, default));
        Assert.That(resumed.Single().Stage, Is.EqualTo("Abnahme"));
        Assert.That(second, Is.Empty, "exactly once");
        Assert.That((await lc.GetHistoryAsync(Actor.Engine, id, default)).Where(h => h.Step == "promotion:Abnahme").Select(h => (h.Verdict, h.ReasonCode)),
            Is.EqualTo(new[] { ("failed", "LC-PROMOTE-REGISTRY"), ("passed", (string?)null) }), "the failure, then exactly one promotion");
        Assert.That(SkopeoDigest($"{Harness.Registry}/abnahme/{s.RegistryRepository}:abnahme"), Is.EqualTo(digest));
        var trace = await engine.Audit.TraceAsync(id.ToString(), default);
        Assert.That(trace.Ok, Is.True, string.Join("\n", trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems)));
        Assert.That(trace.Deliveries.Single().Steps.Select(x => (x.Record.Stage, x.Record.Verdict)).TakeLast(2),
            Is.EqualTo(new[] { ("promotion:Abnahme", "failed"), ("promotion:Abnahme", "passed") }), "the trace shows the failure and the promotion after it");
    }
}
