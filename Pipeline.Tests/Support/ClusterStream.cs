using System.Diagnostics;
using Pipeline.Engine.Ledger;

namespace Pipeline.Tests.Support;

/// <summary>What a <see cref="ClusterStream"/> run did.</summary>
/// <param name="KilledLogs">Each killed process: node, exit code and its log.</param>
/// <param name="KillToNextAcceptance">For each kill: the time until the cluster next accepted a delivery.</param>
public sealed record ClusterStreamResult(IReadOnlyList<string> Tags, IReadOnlyList<string> KilledLogs, TimeSpan Elapsed, IReadOnlyList<TimeSpan> KillToNextAcceptance);

/// <summary>
/// Two daemons (nodes a and b) of one cluster deliver a stream of tags while, <c>kills</c> times,
/// the node that reaches the middle of a delivery (its scan stage passed) is killed with -9 and
/// started again at once; more tags are published after the first kill. Ends when every tag is
/// accepted and every kill happened, then stops both nodes with SIGTERM.
/// </summary>
public sealed class ClusterStream(Scenario s, ClusterNodes nodes)
{
    public async Task<ClusterStreamResult> RunAsync(int initialTags, int laterTags, int kills, TimeSpan limit)
    {
        var tags = new List<string>();
        void Publish()
        {
            var version = $"1.0.{tags.Count}";
            s.WriteGoodDelivery(version);
            s.Publish("v" + version);
            tags.Add("v" + version);
        }

        for (var i = 0; i < initialTags; i++) Publish();
        var clock = Stopwatch.StartNew();
        var killsLeft = kills;
        var killedAt = new System.Collections.Concurrent.ConcurrentQueue<TimeSpan>();
        Func<string, bool> KillInTheMiddleOfADelivery()
        {
            var mine = 0;
            return line => line.Contains(" Stage scan passed", StringComparison.Ordinal) && Volatile.Read(ref mine) == 0
                           && Interlocked.Decrement(ref killsLeft) >= 0 && Interlocked.Exchange(ref mine, 1) == 0;
        }

        void Kill(EngineProcess p)
        {
            killedAt.Enqueue(clock.Elapsed);
            p.KillHard();
        }

        var ledger = new LedgerStore(s.Harness.Database.DataSource(), TimeProvider.System);
        // The schema first: the loop below reads the deliveries table before a daemon has migrated it.
        await ledger.MigrateAsync(default);
        var running = new Dictionary<string, EngineProcess>
        {
            ["a"] = nodes.Start("a", KillInTheMiddleOfADelivery(), Kill),
            ["b"] = nodes.Start("b", KillInTheMiddleOfADelivery(), Kill),
        };
        var killed = new List<string>();
        var acceptedAt = new Dictionary<string, TimeSpan>();
        try
        {
            while (true)
            {
                foreach (var (node, p) in running.ToList().Where(n => n.Value.HasExited))
                {
                    killed.Add($"{node}: exit {p.ExitCode}\n{p.Log}");
                    p.Dispose();
                    running[node] = nodes.Start(node, KillInTheMiddleOfADelivery(), Kill);
                    if (killed.Count == 1)
                        for (var i = 0; i < laterTags; i++) Publish();
                }

                foreach (var tag in tags.Where(t => !acceptedAt.ContainsKey(t)))
                {
                    if ((await ledger.FindDeliveriesAsync(s.Name, tag, default)).Any(r => r.Status == DeliveryStatus.Accepted))
                        acceptedAt[tag] = clock.Elapsed;
                }

                if (acceptedAt.Count == tags.Count && killed.Count == kills) break;
                if (clock.Elapsed > limit)
                    Assert.Fail($"{acceptedAt.Count} of {tags.Count} tags accepted, {killed.Count} of {kills} kills after {limit}\n--- a:\n{running["a"].Log}\n--- b:\n{running["b"].Log}\n--- killed:\n{string.Join("\n---\n", killed)}");
                await Task.Delay(200);
            }
        }
        finally
        {
            foreach (var p in running.Values.Where(p => !p.HasExited)) p.Signal("TERM");
            foreach (var p in running.Values)
            {
                await p.WaitAsync(TimeSpan.FromSeconds(45));
                p.Dispose();
            }
        }

        var elapsed = clock.Elapsed;
        var takeovers = killedAt.Select(k => acceptedAt.Values.Where(a => a > k).DefaultIfEmpty(elapsed).Min() - k).ToList();
        return new ClusterStreamResult(tags, killed, elapsed, takeovers);
    }
}
