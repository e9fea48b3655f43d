using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Metering;
using Pipeline.Engine.Observability;
using Pipeline.Tests.Integration.Lifecycle;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Metering;

/// <summary>
/// A real delivery of a tenant's application, accepted and promoted into its first (automatic) stage: the real
/// /metrics endpoint counts it with the tenant label, the promotion recorded the sizes the registry really serves,
/// and <c>pipeline report</c> adds up to the same numbers.
/// </summary>
public class MeteringEndToEndTests : DeliveryFixture
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private static double Sample(string body, string metric, params string[] labels)
    {
        var matches = body.Split('\n')
            .Where(l => l.StartsWith(metric + "{", StringComparison.Ordinal))
            .Where(l => labels.All(x => l.Contains(x, StringComparison.Ordinal))).ToList();
        Assert.That(matches, Has.Count.EqualTo(1), $"one sample of {metric} with {string.Join(",", labels)} expected in:\n{body}");
        var line = matches[0];
        return double.Parse(line[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    [Test]
    public async Task A_tenants_delivery_is_metered_with_its_tenant_in_the_metrics_and_the_report()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        File.AppendAllText(s.ConfigPath, $"\ntenants:\n  - id: land-a\n    name: Landesamt A\n    pipelines: [{s.Name}]\nmetrics:\n  listen: 127.0.0.1:0\n");
        sc.PeopleIn("land-a");
        File.AppendAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), "\nschutzbedarf: normal\n");
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");

        Guid id;
        await using (var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default))
        await using (var ops = await OperationsServer.StartIfConfiguredAsync(engine, null, default))
        {
            var run = await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
            var delivery = run.Deliveries.Single();
            Assert.That(delivery.Status, Is.EqualTo(DeliveryStatus.Accepted), delivery.Reason);
            id = delivery.DeliveryId;

            using var response = await Http.GetAsync(ops!.Address + "/metrics");
            var body = await response.Content.ReadAsStringAsync();
            var labels = new[] { "tenant=\"land-a\"", $"pipeline=\"{s.Name}\"" };
            Assert.That(Sample(body, "pipeline_deliveries_total", [.. labels, "verdict=\"accepted\""]), Is.EqualTo(1));
            Assert.That(Sample(body, "pipeline_promotions_total", [.. labels, "stage=\"Vorprüfung\""]), Is.EqualTo(1));
            var scanned = Sample(body, "pipeline_scan_bytes_total", labels);
            Assert.That(scanned, Is.GreaterThan(0));

            var entries = await engine.Ledger.ReadAsync(id, default);
            Assert.That(entries.Single(e => e.Record.Stage == "scan").Record.Evidence["bytesScanned"], Is.EqualTo(scanned.ToString(CultureInfo.InvariantCulture)),
                "the ledger records what the metric counted");
            var promotion = entries.Single(e => e.Record.Stage == "promotion:Vorprüfung").Record.Evidence;
            var repo = promotion.Keys.Single(k => k.EndsWith(".storage", StringComparison.Ordinal))[..^".storage".Length];
            var stored = StorageEvidence.Parse(promotion[repo + ".storage"])!.ToDictionary(o => o.Digest, o => o.Size);

            // What the registry serves in the stage: the manifest and every blob it names, with these sizes.
            var reference = promotion[repo + ".tag"];
            var raw = LifecycleScenario.SkopeoRaw(reference);
            var manifest = JsonNode.Parse(raw)!;
            var digest = LifecycleScenario.SkopeoDigest(reference);
            Assert.That(stored[digest], Is.EqualTo(System.Text.Encoding.UTF8.GetByteCount(raw.TrimEnd('\n'))).Or.EqualTo(System.Text.Encoding.UTF8.GetByteCount(raw)));
            IEnumerable<JsonNode?> named = manifest["manifests"]?.AsArray() ?? new[] { manifest["config"] }.Concat(manifest["layers"]!.AsArray());
            foreach (var d in named)
                Assert.That(stored[d!["digest"]!.GetValue<string>()], Is.EqualTo(d["size"]!.GetValue<long>()), d.ToJsonString());
            Assert.That(long.Parse(promotion[repo + ".storageBytes"], CultureInfo.InvariantCulture), Is.EqualTo(stored.Values.Sum()));

            var o = new StringWriter();
            var err = new StringWriter();
            var rc = await PipelineCli.RunAsync(["report", "--config", s.ConfigPath, "--month", DateTimeOffset.UtcNow.ToString("yyyy-MM", CultureInfo.InvariantCulture), "--format", "json"], o, err);
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err.ToString());
            using var doc = JsonDocument.Parse(o.ToString());
            Assert.That(doc.RootElement.GetProperty("period").GetProperty("complete").GetBoolean(), Is.False, "the current month is not over");
            var row = doc.RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("pipeline").GetString() == s.Name);
            Assert.That(row.GetProperty("tenant").GetString(), Is.EqualTo("land-a"));
            Assert.That(row.GetProperty("deliveries").GetProperty("accepted").GetInt64(), Is.EqualTo(1));
            Assert.That(row.GetProperty("scan").GetProperty("bytes").GetDouble(), Is.EqualTo(scanned));
            Assert.That(row.GetProperty("promotions").GetProperty("byStage").GetProperty("Vorprüfung").GetInt64(), Is.EqualTo(1));
            Assert.That(row.GetProperty("storage").GetProperty("bytesByStage").GetProperty("Vorprüfung").GetInt64(), Is.EqualTo(stored.Values.Sum()));
            Assert.That(row.GetProperty("storage").GetProperty("imagesWithoutSizes").GetInt64(), Is.Zero);
        }
    }
}
