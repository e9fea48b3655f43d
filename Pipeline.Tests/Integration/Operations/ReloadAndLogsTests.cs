using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pipeline.Engine.Api;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Operations;

/// <summary>Configuration reload from real files, and JSON logs of a real delivery.</summary>
public class ReloadAndLogsTests : DeliveryFixture
{
    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static async Task<ReloadOutcome> NextOutcome(ConfigWatcher watcher, int after)
    {
        var until = DateTime.UtcNow.AddSeconds(30);
        while (watcher.Last is not { } last || last.Generation <= after)
        {
            if (DateTime.UtcNow > until) Assert.Fail($"the watcher saw no change within 30 s (last: {watcher.Last})");
            await Task.Delay(50);
        }

        return watcher.Last!;
    }

    [Test]
    public async Task A_file_change_is_validated_whole_and_applied_whole_or_refused_whole()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        var tokensFile = Path.Combine(s.Root, "auditors.txt");
        File.WriteAllText(tokensFile, Hash("first-token") + " first\n");
        File.AppendAllText(s.ConfigPath, "\naudit:\n  apiTokensFile: auditors.txt\n");
        var sink = new CapturingSink();
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default);
        var tokens = AuditApiTokens.Load(tokensFile);
        // A periodic check far away: what is seen here was seen by the file system watcher.
        using var watcher = ConfigWatcher.Start(engine, tokens, TimeSpan.FromMinutes(10));

        var pipelines = Path.Combine(s.Root, "pipelines");
        var original = File.ReadAllText(Path.Combine(pipelines, s.Name + ".yaml"));
        File.WriteAllText(Path.Combine(pipelines, s.Name + "-second.yaml"), original.Replace($"name: {s.Name}", $"name: {s.Name}-second"));
        var applied = await NextOutcome(watcher, 0);
        Assert.That(applied.Applied, Is.True, string.Join("\n", applied.Errors));
        Assert.That(engine.Pipelines.Select(p => p.Name), Is.EquivalentTo(new[] { s.Name, s.Name + "-second" }));
        Assert.That(engine.Pipeline(s.Name + "-second").Name, Is.EqualTo(s.Name + "-second"));

        File.AppendAllText(tokensFile, Hash("second-token") + " second\n");
        applied = await NextOutcome(watcher, applied.Generation);
        Assert.That(applied.Applied, Is.True, string.Join("\n", applied.Errors));
        Assert.That(tokens.Match("second-token"), Is.EqualTo("second"), "the running API's tokens took the new hash");

        // One broken definition: refused with all its errors, the running configuration stays.
        File.WriteAllText(Path.Combine(pipelines, "broken.yaml"), "name: Not A Name!\nsupplier: x\nsource:\n  url: ftp://nowhere\n");
        var refused = await NextOutcome(watcher, applied.Generation);
        Assert.That(refused.Applied, Is.False);
        Assert.That(refused.Errors, Has.Count.GreaterThanOrEqualTo(2), string.Join("\n", refused.Errors));
        Assert.That(refused.Errors, Is.All.Contains("broken.yaml"));
        Assert.That(sink.Lines, Has.Some.Contains($"Configuration change refused with {refused.Errors.Count} error(s)"));

        // A valid new file while another is broken: still refused whole, nothing of it is taken.
        File.WriteAllText(Path.Combine(pipelines, s.Name + "-third.yaml"), original.Replace($"name: {s.Name}", $"name: {s.Name}-third"));
        refused = await NextOutcome(watcher, refused.Generation);
        Assert.That(refused.Applied, Is.False);
        Assert.That(engine.Pipelines.Select(p => p.Name), Is.EquivalentTo(new[] { s.Name, s.Name + "-second" }));
        Assert.That(() => engine.Pipeline(s.Name + "-third"), Throws.TypeOf<Pipeline.Engine.PipelineException>());

        // A broken token file is refused too; the old hashes keep working.
        File.Delete(Path.Combine(pipelines, "broken.yaml"));
        applied = await NextOutcome(watcher, refused.Generation);
        Assert.That(applied.Applied, Is.True, string.Join("\n", applied.Errors));
        Assert.That(engine.Pipelines.Select(p => p.Name), Is.EquivalentTo(new[] { s.Name, s.Name + "-second", s.Name + "-third" }));
        File.WriteAllText(tokensFile, "this-is-a-token-not-a-hash\n");
        refused = await NextOutcome(watcher, applied.Generation);
        Assert.That(refused.Applied, Is.False);
        Assert.That(refused.Errors.Single(), Does.StartWith("API-TOKENS-FILE"));
        Assert.That(tokens.Match("first-token"), Is.EqualTo("first"));

        // Touching a file without changing it is not a change.
        File.SetLastWriteTimeUtc(Path.Combine(pipelines, s.Name + "-third.yaml"), DateTime.UtcNow.AddMinutes(1));
        Assert.That(watcher.CheckNow(), Is.Null);
    }

    [Test]
    public async Task JSON_logs_of_a_real_delivery_are_one_object_per_line_and_hold_no_secret()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var password = File.ReadAllText(TestServices.Require("PIPELINE_GIT_PASSWORD_FILE")).Trim();
        var output = new StringWriter();
        var log = Logging.Create(LogFormat.Json, output);
        await using (var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, log, default))
        {
            var report = await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
            Assert.That(report.Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));
        }

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.GreaterThan(5));
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            Assert.That(doc.RootElement.TryGetProperty("@t", out _), Is.True, line);
            Assert.That(doc.RootElement.TryGetProperty("@mt", out _), Is.True, line);
        }

        Assert.That(lines, Has.Some.Contains("\"Stage\":\"push\""), "properties are structured fields, not text");
        Assert.That(output.ToString(), Does.Not.Contain(password));
        Assert.That(output.ToString(), Does.Not.Contain(Convert.ToBase64String(Encoding.UTF8.GetBytes(password))));
    }
}
