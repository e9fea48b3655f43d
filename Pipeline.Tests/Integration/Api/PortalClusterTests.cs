using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Api.PortalSetup;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// "Transfer now" in the portal when a <c>pipeline daemon</c> cluster runs on the same database:
/// the portal hands the pass to the cluster (a one-shot Quartz trigger) and runs nothing itself;
/// the daemon process runs the pass and the delivery is accepted exactly once.
/// </summary>
[Category("Integration")]
public class PortalClusterTests : DeliveryFixture
{
    [Test]
    [CancelAfter(180_000)]
    public async Task Transfer_now_is_queued_in_the_daemons_cluster_and_run_by_the_daemon_not_by_the_portal()
    {
        var cluster = "portal-" + Guid.NewGuid().ToString("N")[..12];
        await using var p = await StartAsync(Harness, $"cluster:\n  name: {cluster}\n  checkinIntervalSeconds: 1\n  checkinMisfireThresholdSeconds: 2\n");
        p.Scenario.WriteGoodDelivery("1.1.0");
        p.Scenario.Publish("v1.1.0");
        using var daemon = EngineProcess.Start(["daemon", "--config", p.Scenario.ConfigPath], _ => false, _ => { });
        try
        {
            await WaitUntilAsync(() => daemon.Log.Contains("Daemon started"), "the daemon started", daemon);

            var (status, b) = await p.Send(HttpMethod.Post, $"/api/portal/pipelines/{p.Pipeline}/run", Sam, new { });
            Assert.That(status, Is.EqualTo(202), b?.ToJsonString());
            Assert.That(b!["status"]!.GetValue<string>(), Is.EqualTo("queued-in-cluster"), b.ToJsonString());
            var trigger = b["triggerKey"]!.GetValue<string>();
            Assert.That(trigger, Does.StartWith($"pipelines.{p.Pipeline}-now-"), "the one-shot trigger of the pipeline's job");
            var id = Guid.Parse(b["id"]!.GetValue<string>());
            var (got, gb) = await p.Send(HttpMethod.Get, $"/api/portal/runs/{id}", Sam);
            Assert.That((got, gb!["status"]!.GetValue<string>(), gb["triggerKey"]!.GetValue<string>()), Is.EqualTo((200, "queued-in-cluster", trigger)));

            var ledger = new LedgerStore(Harness.Database.DataSource(), TimeProvider.System);
            await WaitUntilAsync(() => ledger.FindDeliveriesAsync(p.Pipeline, "v1.1.0", default).Result.Any(r => r.Status == DeliveryStatus.Accepted), "the daemon accepted v1.1.0", daemon);
            var rows = await ledger.FindDeliveriesAsync(p.Pipeline, "v1.1.0", default);
            Assert.That(rows.Select(r => r.Status), Is.EqualTo(new[] { DeliveryStatus.Accepted }), "exactly one delivery of v1.1.0");
            Assert.That(Count(daemon.Log, "Fetching tags of"), Is.EqualTo(1), "the daemon ran the one pass\n" + daemon.Log);
            Assert.That(p.Log.Lines, Has.None.Contains("Fetching tags of"), "the portal process ran no pass");
            Assert.That(p.Log.Lines, Has.Some.Contains("handed to the cluster as trigger"));
        }
        finally
        {
            daemon.Signal("TERM");
            Assert.That(await daemon.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0), daemon.Log);
        }
    }

    private static int Count(string text, string what) => (text.Length - text.Replace(what, "", StringComparison.Ordinal).Length) / what.Length;

    private static async Task WaitUntilAsync(Func<bool> condition, string what, EngineProcess log)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline || log.HasExited) Assert.Fail($"not within 60 s: {what}\n{log.Log}");
            await Task.Delay(100);
        }
    }
}
