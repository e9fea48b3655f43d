using System.Net;
using System.Text;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Notifications;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Notifications;

/// <summary>The webhook's signature, its event mapping, its settings, and its retries against a real local receiver.</summary>
public class WebhookTests
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("0123456789abcdef0123456789abcdef");

    [Test]
    public void The_signature_covers_timestamp_and_body_and_a_receiver_refuses_any_change_or_a_stale_timestamp()
    {
        var body = Encoding.UTF8.GetBytes("""{"event":"promoted"}""");
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var ts = now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var sig = WebhookSignature.Sign(Secret, ts, body);
        Assert.That(sig, Does.Match("^sha256=[0-9a-f]{64}$"));
        Assert.That(WebhookSignature.Verify(Secret, ts, sig, body, now, TimeSpan.FromMinutes(5)), Is.True);
        Assert.That(WebhookSignature.Verify(Secret, ts, sig, Encoding.UTF8.GetBytes("""{"event":"rejected"}"""), now, TimeSpan.FromMinutes(5)), Is.False, "another body");
        Assert.That(WebhookSignature.Verify(Secret, (now.ToUnixTimeSeconds() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), sig, body, now, TimeSpan.FromMinutes(5)), Is.False,
            "the timestamp is inside the MAC");
        Assert.That(WebhookSignature.Verify(Encoding.UTF8.GetBytes("another secret 0123456789"), ts, sig, body, now, TimeSpan.FromMinutes(5)), Is.False, "another secret");
        Assert.That(WebhookSignature.Verify(Secret, ts, sig, body, now.AddMinutes(10), TimeSpan.FromMinutes(5)), Is.False, "a replay after the tolerance");
    }

    [TestCase("request:Abnahme", true, "approvals", "approval-pending")]
    [TestCase("request:Vorprüfung", true, "automatic", null)]
    [TestCase("promotion:Produktion", true, "", "promoted")]
    [TestCase("refusal:Abnahme", false, "", "rejected")]
    [TestCase("withdrawal", false, "", "withdrawn")]
    [TestCase("supersession", false, "", null)]
    [TestCase("freigabe:Produktion", true, "", null)]
    [TestCase("scan", false, "", "stage-failed")]
    [TestCase("scan", true, "", null)]
    public void Ledger_steps_map_to_events(string stage, bool passed, string rule, string? expected)
    {
        var ev = WebhookNotifier.EventOf(7, Guid.NewGuid(), "app", "v1", stage, passed, passed ? null : "X-1", null,
            new Dictionary<string, string> { ["rule"] = rule, ["actor"] = "Sam" }, DateTimeOffset.UnixEpoch, 3);
        Assert.That(ev?.Event, Is.EqualTo(expected));
        if (ev is not null) Assert.That((ev.Id, ev.Actor, ev.LogIndex), Is.EqualTo(("ledger-7", "Sam", (long?)3)));
    }

    [Test]
    public void Settings_errors_name_file_and_line_for_every_problem()
    {
        using var dir = new TempDir("webhook-settings-");
        File.WriteAllText(dir.Combine("short.secret"), "tiny");
        var errors = new ConfigErrors();
        var root = YamlReader.Load(dir.Combine("engine.yaml"), """
            notifications:
              webhooks:
                - url: https://hooks.example/x?token=abc
                  secretFile: short.secret
                  events: [promoted, deployed]
                - url: ftp://hooks.example
                  secretFile: missing.secret
                  events: [rejected]
            """, errors)!;
        NotificationSettings.Parse(root, dir.Path);
        var text = string.Join("\n", errors.All.Select(e => e.ToString()));
        Assert.That(text, Does.Contain("no query string").And.Contain("shorter than 16").And.Contain("unknown event 'deployed'")
            .And.Contain("http:// or https://").And.Contain("missing.secret"));
        Assert.That(errors.All.Select(e => e.Line), Is.SupersetOf(new[] { 3, 4, 5, 6, 7 }));
    }

    [Test]
    public async Task The_retry_handler_retries_a_receiver_that_fails_twice_then_succeeds_and_does_not_retry_a_refusal()
    {
        await using var receiver = await WebhookReceiver.StartAsync(Secret);
        var sink = new CapturingSink();
        using var http = new HttpClient(new RetryHandler(5, TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(10), TimeProvider.System, sink.Logger())
            { InnerHandler = new SocketsHttpHandler() });
        HttpRequestMessage Post()
        {
            var body = Encoding.UTF8.GetBytes("""{"event":"promoted"}""");
            var ts = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
            var req = new HttpRequestMessage(HttpMethod.Post, receiver.Url) { Content = new ByteArrayContent(body) };
            req.Headers.Add(WebhookSignature.TimestampHeader, ts);
            req.Headers.Add(WebhookSignature.SignatureHeader, WebhookSignature.Sign(Secret, ts, body));
            return req;
        }

        receiver.Answers.Enqueue(503);
        receiver.Answers.Enqueue(500);
        using (var res = await http.SendAsync(Post())) Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(receiver.Hits.Select(h => (h.Answered, h.SignatureValid)), Is.EqualTo(new[] { (503, true), (500, true), (200, true) }), "the same signed body three times");
        Assert.That(sink.Lines.Count(l => l.Contains("retrying")), Is.EqualTo(2));

        receiver.Hits.Clear();
        receiver.Answers.Enqueue(400);
        using (var res = await http.SendAsync(Post())) Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(receiver.Hits, Has.Count.EqualTo(1), "a 4xx refusal is final");
    }
}
