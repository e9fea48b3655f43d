using System.Globalization;
using Pipeline.Engine.Hosting;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cluster;

/// <summary>
/// The two-daemon kill/restart stream as a benchmark (<c>bench/cluster/run.sh</c>): more tags and
/// kills than the test, sizes from PIPELINE_BENCH_TAGS / PIPELINE_BENCH_LATER_TAGS /
/// PIPELINE_BENCH_KILLS; prints the times and writes them to PIPELINE_BENCH_RESULT when set. The
/// end state is asserted as in the test. Explicit: not part of the suite.
/// </summary>
[Explicit("benchmark: bench/cluster/run.sh")]
[Category("Bench")]
public class ClusterStreamBench : DeliveryFixture
{
    [Test]
    public async Task Two_daemon_stream_with_kill_9_and_restarts()
    {
        int Env(string name, int fallback) => int.TryParse(Environment.GetEnvironmentVariable(name), CultureInfo.InvariantCulture, out var v) ? v : fallback;
        var (initial, later, kills) = (Env("PIPELINE_BENCH_TAGS", 8), Env("PIPELINE_BENCH_LATER_TAGS", 4), Env("PIPELINE_BENCH_KILLS", 4));
        var s = Harness.NewScenario();
        s.WriteDefinition();
        var def = Path.Combine(s.Root, "pipelines", s.Name + ".yaml");
        File.WriteAllText(def, File.ReadAllText(def).Replace("supplier: Test Supplier GmbH", "supplier: Test Supplier GmbH\nschedule: \"0/2 * * * * ?\"", StringComparison.Ordinal));
        var nodes = new ClusterNodes(s);
        var r = await new ClusterStream(s, nodes).RunAsync(initial, later, kills, TimeSpan.FromMinutes(30));
        foreach (var node in new[] { "a", "b" })
        {
            await using var engine = await PipelineEngine.StartAsync(nodes.Config(node), TimeProvider.System, Serilog.Core.Logger.None, default);
            await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
        }

        await nodes.AssertExactlyOnceAsync(r.Tags, "a", "b");
        var lines = new List<string>
        {
            $"cluster stream: 2 daemons (check-in {ClusterNodes.CheckinSeconds} s, misfire threshold {ClusterNodes.MisfireThresholdSeconds} s), schedule every 2 s",
            $"tags: {r.Tags.Count} ({initial} at start, {later} after the first kill), kill -9 + restart: {r.KilledLogs.Count}",
            $"all accepted exactly once in {r.Elapsed.TotalSeconds:0.0} s ({r.Tags.Count / r.Elapsed.TotalMinutes:0.0} deliveries/min)",
            $"kill -9 to the cluster's next acceptance: {string.Join(", ", r.KillToNextAcceptance.Select(t => t.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s"))}",
            "end state: ledger verifies; one accepted delivery, one image and one VCS B tag per tag; no work folder left",
        };
        foreach (var l in lines) TestContext.Out.WriteLine(l);
        if (Environment.GetEnvironmentVariable("PIPELINE_BENCH_RESULT") is { Length: > 0 } file) await File.WriteAllLinesAsync(file, lines);
    }
}
