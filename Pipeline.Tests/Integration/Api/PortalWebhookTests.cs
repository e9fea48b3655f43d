using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Notifications;
using Pipeline.Tests.Engine.Notifications;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Api.PortalSetup;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// Webhooks from the real ledger: a Freigabe requested through the portal reaches a local receiver
/// as a signed approval-pending event; a receiver that fails twice gets the promotion on the third
/// attempt; a dead receiver costs the action nothing (NOTIFY-FAILED in the log, the cursor moves on).
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class PortalWebhookTests : DeliveryFixture
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("webhook-secret-0123456789abcdef");

    [Test]
    public async Task Lifecycle_events_reach_the_receiver_signed_once_each_through_failures_and_a_dead_receiver_blocks_nothing()
    {
        await using var p = await StartAsync(Harness);
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        var secretFile = Path.Combine(p.Scenario.Root, "hook.secret");
        await File.WriteAllBytesAsync(secretFile, Secret);
        var hooks = new NotificationSettings(
        [
            new WebhookSettings("receiver", receiver.Url, secretFile, [NotificationEvents.ApprovalPending, NotificationEvents.Promoted]),
            new WebhookSettings("dead", new Uri("http://127.0.0.1:9/hook"), secretFile, NotificationEvents.All),
        ], TimeSpan.FromSeconds(10), 3);
        var settings = p.Engine.Settings.Database;
        await using var source = LedgerStore.CreateDataSource(settings.ConnectionString, settings.PasswordFile);
        var sink = new CapturingSink();
        await using var notifier = new WebhookNotifier(hooks, source, false, Path.Combine(p.Scenario.Root, "notify"), TimeProvider.System, sink.Logger(), baseDelay: TimeSpan.FromMilliseconds(20));
        Assert.That(await notifier.PollOnceAsync(default), Is.Zero, "the first poll starts at the end of the log: no flood of history");

        var (status, _) = await p.Send(HttpMethod.Post, $"/api/portal/deliveries/{p.DeliveryId}/promote", Sam, new { stage = "Abnahme" });
        Assert.That(status, Is.EqualTo(201), "the action does not wait for any webhook");
        Assert.That(await notifier.PollOnceAsync(default), Is.EqualTo(1));
        var pending = receiver.Hits.Single();
        Assert.That((pending.Event, pending.SignatureValid, pending.Answered), Is.EqualTo(("approval-pending", true, 200)));
        var body = JsonNode.Parse(pending.Body)!;
        Assert.That((body["deliveryId"]!.GetValue<string>(), body["stage"]!.GetValue<string>(), body["actor"]!.GetValue<string>(), body["tag"]!.GetValue<string>()),
            Is.EqualTo((p.DeliveryId.ToString(), "Abnahme", Sam, "v1.0.0")));
        Assert.That(sink.Lines, Has.Some.Contains("NOTIFY-FAILED").And.Contains("dead"), "the dead receiver is logged with its code");

        receiver.Hits.Clear();
        receiver.Answers.Enqueue(503);
        receiver.Answers.Enqueue(502);
        (status, _) = await p.Send(HttpMethod.Post, $"/api/portal/deliveries/{p.DeliveryId}/approve", Vera, new { stage = "Abnahme", comment = "ok" });
        Assert.That(status, Is.EqualTo(200));
        Assert.That(await notifier.PollOnceAsync(default), Is.EqualTo(1), "the Freigabe itself is no subscribed event; the promotion is");
        Assert.That(receiver.Hits.Select(h => (h.Event, h.SignatureValid, h.Answered)), Is.EqualTo(new[]
        {
            ("promoted", true, 503), ("promoted", true, 502), ("promoted", true, 200),
        }), "failed twice, then delivered");
        Assert.That(receiver.Hits.Select(h => h.Id).Distinct().Count(), Is.EqualTo(1), "one event id: a receiver can drop repeats");

        receiver.Hits.Clear();
        Assert.That(await notifier.PollOnceAsync(default), Is.Zero);
        Assert.That(receiver.Hits, Is.Empty, "nothing is sent twice once the cursor moved on");
        Assert.That(string.Join("\n", sink.Lines), Does.Not.Contain(Encoding.UTF8.GetString(Secret)), "the secret is never logged");
    }
}
