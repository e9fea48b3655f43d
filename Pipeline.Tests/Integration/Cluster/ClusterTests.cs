using Npgsql;
using Pipeline.Engine.Cluster;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cluster;

/// <summary>
/// Two <c>pipeline daemon</c> processes on one database form a Quartz cluster: a stream of tags
/// is delivered exactly once while nodes are killed with -9 and restarted; an on-demand pass runs
/// on one node only; SIGTERM hands a running pass to the other node.
/// </summary>
public class ClusterTests : DeliveryFixture
{
    [Test]
    [CancelAfter(150_000)]
    public async Task Two_daemons_deliver_a_stream_of_tags_exactly_once_while_nodes_are_killed_and_restarted()
    {
        var s = NewScenario(schedule: "0/2 * * * * ?");
        var nodes = new ClusterNodes(s);
        var result = await new ClusterStream(s, nodes).RunAsync(initialTags: 3, laterTags: 1, kills: 2, TimeSpan.FromSeconds(120));
        var (tags, killed) = (result.Tags, result.KilledLogs);
        TestContext.Out.WriteLine($"{tags.Count} tags, {killed.Count} kills in {result.Elapsed}; kill to next acceptance: {string.Join(", ", result.KillToNextAcceptance)}");

        // A killed node's work folder is on its own disk: it removes it on its next pass of the pipeline.
        foreach (var node in new[] { "a", "b" })
        {
            await using var engine = await PipelineEngine.StartAsync(nodes.Config(node), TimeProvider.System, Serilog.Core.Logger.None, default);
            Assert.That((await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries, Is.Empty, "every tag was delivered by the daemons");
        }

        Assert.That(killed, Has.Count.EqualTo(2));
        Assert.That(killed, Has.All.StartsWith("a: exit 137").Or.StartsWith("b: exit 137"), "both kills were kill -9");
        await nodes.AssertExactlyOnceAsync(tags, "a", "b");
        Assert.That(CountAdvisoryLocks(), Is.Zero, "no pipeline lock is left");
        Assert.That(await CountAsync($"select count(*) from quartz.qrtz_fired_triggers where sched_name = '{s.Name}'"), Is.Zero, "no firing is left in the cluster's store");
    }

    [Test]
    [CancelAfter(90_000)]
    public async Task An_on_demand_pass_runs_on_one_node_and_SIGTERM_hands_it_to_the_other_node_which_finishes_the_delivery()
    {
        var s = NewScenario(schedule: null);
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var nodes = new ClusterNodes(s);
        var signalled = 0;
        Func<string, bool> TermOnScan() => line => line.Contains(" Stage scan passed", StringComparison.Ordinal) && Interlocked.Exchange(ref signalled, 1) == 0;
        using var a = nodes.Start("a", TermOnScan(), p => p.Signal("TERM"));
        using var b = nodes.Start("b", TermOnScan(), p => p.Signal("TERM"));
        await WaitUntilAsync(() => a.Log.Contains("Daemon started") && b.Log.Contains("Daemon started"), "both daemons started", a, b);

        await using (var client = await PipelineEngine.StartAsync(nodes.Config("client"), TimeProvider.System, Serilog.Core.Logger.None, default))
            await ClusterClient.RunNowAsync(client, s.Name, "test", default);

        var ledger = new LedgerStore(Harness.Database.DataSource(), TimeProvider.System);
        await WaitUntilAsync(() => (a.HasExited || b.HasExited)
                                   && ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default).Result.Any(r => r.Status == DeliveryStatus.Accepted), "the other node accepted the delivery", a, b);
        var (stopped, other) = a.HasExited ? (a, b) : (b, a);
        Assert.That(await stopped.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0), stopped.Log);
        Assert.That(stopped.Log, Does.Contain("handed back to the cluster"));
        Assert.That(other.Log, Does.Contain("Taking over the pass of " + s.Name), "the other node continued the handed-back pass");
        Assert.That(Count(stopped.Log, "Fetching tags of") + Count(other.Log, "Fetching tags of"), Is.EqualTo(2), "one pass per trigger: the on-demand one, then the hand-back");
        other.Signal("TERM");
        Assert.That(await other.WaitAsync(TimeSpan.FromSeconds(30)), Is.EqualTo(0), other.Log);

        var rows = await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default);
        Assert.That(rows.Select(r => (r.Status, r.ReasonCode)), Is.EqualTo(new[] { (DeliveryStatus.Retried, "ENG-CANCELLED"), (DeliveryStatus.Accepted, (string?)null) }),
            "the interrupted attempt is recorded and handed back; the other node's attempt is accepted");
        await nodes.AssertExactlyOnceAsync(["v1.0.0"], "a", "b");
    }

    internal Scenario NewScenario(string? schedule)
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        if (schedule is not null)
        {
            var def = Path.Combine(s.Root, "pipelines", s.Name + ".yaml");
            File.WriteAllText(def, File.ReadAllText(def).Replace("supplier: Test Supplier GmbH", $"supplier: Test Supplier GmbH\nschedule: \"{schedule}\"", StringComparison.Ordinal));
        }

        return s;
    }

    private static int Count(string text, string what) => (text.Length - text.Replace(what, "", StringComparison.Ordinal).Length) / what.Length;

    private static async Task WaitUntilAsync(Func<bool> condition, string what, params EngineProcess[] logs)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"not within 60 s: {what}\n" + string.Join("\n---\n", logs.Select(l => l.Log)));
            await Task.Delay(100);
        }
    }

    private int CountAdvisoryLocks()
    {
        using var ds = Harness.Database.DataSource();
        using var cmd = ds.CreateCommand("select count(*) from pg_locks l join pg_database d on d.oid = l.database where l.locktype = 'advisory' and d.datname = current_database()");
        return Convert.ToInt32(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<long> CountAsync(string sql)
    {
        await using var ds = Harness.Database.DataSource();
        await using var cmd = ds.CreateCommand(sql);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync());
    }
}
