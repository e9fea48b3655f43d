using System.Text;
using Npgsql;
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
/// The real <c>pipeline daemon</c> (a child process) sends webhooks, and a second notifier (as in
/// <c>pipeline portal serve</c>, with its own work folder) runs over the same database at the same
/// time: every lifecycle event reaches the receiver exactly once.
/// </summary>
[NonParallelizable]
public class WebhookTwoProcessTests : DeliveryFixture
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("webhook-secret-0123456789abcdef");

    [Test]
    public async Task The_daemon_and_a_portal_notifier_together_deliver_each_event_once()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        await File.WriteAllBytesAsync(Path.Combine(s.Root, "hook.secret"), Secret);
        File.AppendAllText(s.ConfigPath, $"""

            notifications:
              pollSeconds: 1
              attempts: 3
              webhooks:
                - name: ops
                  url: {receiver.Url}
                  secretFile: hook.secret
                  events: [approval-pending, promoted, withdrawn]

            """);
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var report = (await s.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(DeliveryStatus.Accepted), report.Reason);
        var id = report.DeliveryId;

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var db = engine.Settings.Database;
        await using var source = LedgerStore.CreateDataSource(db.ConnectionString, db.PasswordFile);

        using var daemon = EngineProcess.Start(["daemon", "--config", s.ConfigPath], _ => false, _ => { });
        // The daemon's notifier has started once it has set the webhook's cursor (to the end of the log).
        await Until(async () => await CursorAsync(source) is not null, TimeSpan.FromSeconds(60), () => "the daemon never set a webhook cursor:\n" + daemon.Log);

        // A second process's notifier (the portal's), its own work folder, polling all the time.
        var portalLog = new CapturingSink();
        await using var portal = new WebhookNotifier(engine.Settings.Notifications, source, false, Path.Combine(s.Root, "portal-work", "notifications"), TimeProvider.System,
            portalLog.Logger(), baseDelay: TimeSpan.FromMilliseconds(20));
        using var stop = new CancellationTokenSource();
        var portalSent = 0;
        var polling = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                portalSent += await portal.PollOnceAsync(CancellationToken.None);
                await Task.Yield();
            }
        });

        var lc = engine.Lifecycle;
        await lc.RequestPromotionAsync(As(engine, "sam"), id, "Abnahme", default);
        await lc.ApproveAsync(As(engine, "anna"), new ApprovalInput(id, "Abnahme", null, "ok", null, null), default);
        await lc.WithdrawAsync(As(engine, "ben"), id, "zurückgezogen", default);
        var last = (await engine.Ledger.ReadAsync(id, default)).Max(e => e.Sequence);

        await Until(async () => await CursorAsync(source) >= last && receiver.Hits.Count >= 3, TimeSpan.FromSeconds(60),
            () => $"cursor {CursorAsync(source).Result}, last {last}, hits {receiver.Hits.Count}\n{daemon.Log}");
        await stop.CancelAsync();
        await polling;
        // One more pass of each after the end: nothing is sent again.
        Assert.That(await portal.PollOnceAsync(default), Is.Zero);
        daemon.Signal("TERM");
        Assert.That(await daemon.WaitAsync(TimeSpan.FromMinutes(1)), Is.Zero, daemon.Log);

        Assert.That(receiver.Hits.Select(h => (h.Event, h.SignatureValid, h.Answered)), Is.EqualTo(new[]
        {
            ("approval-pending", true, 200), ("promoted", true, 200), ("withdrawn", true, 200),
        }), "each event once, in log order, whichever process sent it");
        Assert.That(receiver.Hits.Select(h => h.Id).Distinct().Count(), Is.EqualTo(3));
        var daemonSent = daemon.Lines.Count(l => l.Contains("Webhook ", StringComparison.Ordinal) && l.Contains(" delivered", StringComparison.Ordinal));
        Assert.That(daemonSent + portalSent, Is.EqualTo(3), $"daemon sent {daemonSent}, the portal's notifier {portalSent}");
    }

    private static async Task<long?> CursorAsync(NpgsqlDataSource source)
    {
        await using var cmd = source.CreateCommand("select seq from notification_cursors where webhook = 'ops'");
        return await cmd.ExecuteScalarAsync() as long?;
    }

    private static async Task Until(Func<Task<bool>> condition, TimeSpan limit, Func<string> why)
    {
        var deadline = DateTime.UtcNow + limit;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail(why());
            await Task.Delay(50);
        }
    }
}
