using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Observability;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Operations;

/// <summary>The operator's port: Prometheus metrics after real deliveries, and readiness that names what is down.</summary>
public class HealthAndMetricsTests : DeliveryFixture
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private static void ServeMetrics(Scenario s, string? clamdEndpoint = null)
    {
        var text = File.ReadAllText(s.ConfigPath) + "\nmetrics:\n  listen: 127.0.0.1:0\n";
        if (clamdEndpoint is not null)
            text = Regex.Replace(text, @"endpoints: \[tcp://[^\]]+\]", $"endpoints: [{clamdEndpoint}]");
        File.WriteAllText(s.ConfigPath, text);
    }

    /// <summary>The value of the one sample of <paramref name="metric"/> whose labels include every one of <paramref name="labels"/>.</summary>
    private static double Sample(string body, string metric, params string[] labels)
    {
        var matches = body.Split('\n')
            .Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal) || l.StartsWith(metric + " ", StringComparison.Ordinal))
            .Where(l => labels.All(x => l.Contains(x, StringComparison.Ordinal))).ToList();
        Assert.That(matches, Has.Count.EqualTo(1), $"one sample of {metric} with {string.Join(",", labels)} expected in:\n{body}");
        var line = matches[0];
        var value = line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0];
        return double.Parse(value, CultureInfo.InvariantCulture);
    }

    [Test]
    public async Task Metrics_after_a_real_delivery_count_it_by_verdict_and_stage_and_show_the_ledger_and_the_dependencies()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        ServeMetrics(s);
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        s.Supplier.Write("docs/sample.txt", Eicar.Bytes());
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.1");

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        await using var ops = await OperationsServer.StartIfConfiguredAsync(engine, null, default);
        Assert.That(ops, Is.Not.Null);
        var report = await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
        Assert.That(report.Deliveries.Select(d => d.Status), Is.EqualTo(new[] { DeliveryStatus.Accepted, DeliveryStatus.Rejected }));
        var rejectedAt = report.Deliveries[1].Entries.Last().Record.Stage;
        Assert.That(rejectedAt, Is.EqualTo("scan"));

        using var response = await Http.GetAsync(ops!.Address + "/metrics");
        var body = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), body);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Does.StartWith("text/plain").Or.StartWith("application/openmetrics-text"));
        var p = $"pipeline=\"{s.Name}\"";
        Assert.That(Sample(body, "pipeline_deliveries_total", p, "verdict=\"accepted\"", "stage=\"push\""), Is.EqualTo(1));
        Assert.That(Sample(body, "pipeline_deliveries_total", p, "tenant=\"\"", "verdict=\"accepted\""), Is.EqualTo(1), "no tenants configured: tenant=\"\"");
        Assert.That(Sample(body, "pipeline_deliveries_total", p, "verdict=\"rejected\"", $"stage=\"{rejectedAt}\""), Is.EqualTo(1));
        foreach (var stage in new[] { "fetch", "verify", "scan", "publish", "build", "push" })
            Assert.That(Sample(body, "pipeline_stage_duration_seconds_count", p, $"stage=\"{stage}\"", "outcome=\"passed\""), Is.GreaterThanOrEqualTo(1), stage);
        Assert.That(Sample(body, "pipeline_stage_duration_seconds_count", p, $"stage=\"{rejectedAt}\"", "outcome=\"failed\""), Is.EqualTo(1));
        var scanned = Sample(body, "pipeline_scan_bytes_total", p);
        var delivered = new DirectoryInfo(s.Supplier.WorkTree).EnumerateFiles("*", SearchOption.AllDirectories).Where(f => !f.FullName.Contains("/.git/", StringComparison.Ordinal)).Sum(f => f.Length);
        Assert.That(scanned, Is.GreaterThan(delivered), "both deliveries' files went to clamd");
        Assert.That(Sample(body, "pipeline_clamd_scans_total", "verdict=\"infected\""), Is.GreaterThanOrEqualTo(1));
        var ledgerSize = await engine.Ledger.Log.SizeAsync(default);
        Assert.That(Sample(body, "pipeline_ledger_size", "{"), Is.EqualTo(ledgerSize).And.GreaterThan(0));
        Assert.That(Sample(body, "pipeline_ledger_checkpoint_age_seconds", "{"), Is.InRange(0, 600));
        Assert.That(Sample(body, "pipeline_approvals_pending", "{"), Is.EqualTo(0));
        foreach (var dependency in new[] { "database", "clamd", "registry", "vcs_b" })
            Assert.That(Sample(body, "pipeline_dependency_up", $"dependency=\"{dependency}\""), Is.EqualTo(1), dependency);

        using var ready = await Http.GetAsync(ops.Address + "/health/ready");
        Assert.That(ready.StatusCode, Is.EqualTo(HttpStatusCode.OK), await ready.Content.ReadAsStringAsync());
        using var post = await Http.PostAsync(ops.Address + "/metrics", new StringContent(""));
        Assert.That(post.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
    }

    [Test]
    public async Task Readiness_goes_503_naming_clamd_when_it_stops_and_recovers_when_it_is_back()
    {
        using var clamd = await ThrowAwayClamd.StartAsync();
        var s = Harness.NewScenario();
        s.WriteDefinition();
        ServeMetrics(s, clamd.Endpoint);
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        await using var ops = await OperationsServer.StartIfConfiguredAsync(engine, _ => Task.FromResult(true), default);

        var (status, json) = await ReadyAsync(ops!);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), json.ToString());
        Assert.That(json.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("name").GetString()),
            Is.EquivalentTo(new[] { "database", "clamd", "registry", "vcs_b", "scheduler" }));
        using (var live = await Http.GetAsync(ops!.Address + "/health/live"))
            Assert.That(live.StatusCode, Is.EqualTo(HttpStatusCode.OK));

        clamd.Kill();
        (status, json) = await PollReadyAsync(ops!, HttpStatusCode.ServiceUnavailable);
        Assert.That(json.GetProperty("status").GetString(), Is.EqualTo("not ready"));
        Assert.That(json.GetProperty("failing").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "clamd" }), json.ToString());
        var clamdCheck = json.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "clamd");
        Assert.That(clamdCheck.GetProperty("detail").GetString(), Does.Contain("HEALTH-CLAMD").And.Contain(clamd.Endpoint));

        using (var metrics = await Http.GetAsync(ops.Address + "/metrics"))
            Assert.That(Sample(await metrics.Content.ReadAsStringAsync(), "pipeline_dependency_up", "dependency=\"clamd\""), Is.EqualTo(0));

        await clamd.RestartAsync();
        (status, json) = await PollReadyAsync(ops, HttpStatusCode.OK);
        Assert.That(json.GetProperty("failing").GetArrayLength(), Is.Zero);
    }

    [Test]
    public async Task Readiness_names_the_scheduler_when_it_is_not_running()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        ServeMetrics(s);
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        await using var ops = await OperationsServer.StartIfConfiguredAsync(engine, _ => Task.FromResult(false), default);
        var (status, json) = await ReadyAsync(ops!);
        Assert.That(status, Is.EqualTo(HttpStatusCode.ServiceUnavailable));
        Assert.That(json.GetProperty("failing").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "scheduler" }), json.ToString());
    }

    [Test]
    public async Task The_daemon_serves_readiness_with_its_running_scheduler_and_stops_serving_when_it_stops()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        ServeMetrics(s);
        var sink = new CapturingSink();
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var daemon = Daemon.RunAsync(engine, cts.Token);

        string? address = null;
        var until = DateTime.UtcNow.AddSeconds(60);
        while (address is null)
        {
            Assert.That(daemon.IsCompleted, Is.False, "the daemon stopped: " + string.Join("\n", sink.Lines));
            if (DateTime.UtcNow > until) Assert.Fail("the daemon never logged its health and metrics address");
            address = sink.Lines.Select(l => Regex.Match(l, @"Health and metrics listening on ""?(http://127\.0\.0\.1:\d+)")).FirstOrDefault(m => m.Success)?.Groups[1].Value;
            if (address is null) await Task.Delay(100);
        }

        JsonElement json = default;
        until = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var r = await Http.GetAsync(address + "/health/ready");
            json = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
            if (r.StatusCode == HttpStatusCode.OK) break;
            if (DateTime.UtcNow > until) Assert.Fail("the daemon never became ready: " + json);
            await Task.Delay(200);
        }

        var scheduler = json.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "scheduler");
        Assert.That(scheduler.GetProperty("ok").GetBoolean(), Is.True);
        await cts.CancelAsync();
        Assert.That(await daemon, Is.Zero);
        Assert.That(async () => await Http.GetAsync(address + "/health/live"), Throws.InstanceOf<HttpRequestException>(), "the port is closed with the daemon");
    }

    private static async Task<(HttpStatusCode, JsonElement)> ReadyAsync(OperationsServer ops)
    {
        using var r = await Http.GetAsync(ops.Address + "/health/ready");
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>Readiness answers are cached for <see cref="HealthChecks.CacheFor"/>: poll until the expected status, with a deadline.</summary>
    private static async Task<(HttpStatusCode, JsonElement)> PollReadyAsync(OperationsServer ops, HttpStatusCode expected)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var (status, json) = await ReadyAsync(ops);
            if (status == expected) return (status, json);
            if (DateTime.UtcNow > until) Assert.Fail($"readiness did not become {expected} within 30 s: {json}");
            await Task.Delay(200);
        }
    }
}
