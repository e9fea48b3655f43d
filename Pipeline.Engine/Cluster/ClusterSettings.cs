using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Cluster;

/// <summary>
/// engine.yaml <c>cluster:</c>: how the daemons sharing one PostgreSQL database form a Quartz
/// cluster. Every node of one cluster uses the same <see cref="Name"/>; Quartz tells nodes apart
/// by <see cref="NodeId"/> (generated from the host name and start time unless set).
/// </summary>
/// <param name="Name">The Quartz scheduler name: the nodes sharing it share schedules and work.</param>
/// <param name="NodeId">This node's instance id, or null: generated (host name + start time).</param>
/// <param name="CheckinInterval">How often a node records in the database that it is alive.</param>
/// <param name="CheckinMisfireThreshold">How long past a missed check-in the other nodes wait before they take over its work.</param>
/// <param name="MisfireThreshold">A schedule firing later than this (every node was down) is a misfire: it fires once at once, then on schedule.</param>
/// <param name="Threads">How many pipeline passes one node runs at the same time.</param>
public sealed record ClusterSettings(string Name, string? NodeId, TimeSpan CheckinInterval, TimeSpan CheckinMisfireThreshold, TimeSpan MisfireThreshold, int Threads)
{
    public const string DefaultName = "pipeline";

    public static ClusterSettings Default { get; } = new(DefaultName, null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(60), 4);

    /// <summary>
    /// The longest time from a node's death (kill -9, power loss) until another node has started its
    /// work: its last check-in may be one interval old, the others wait for the threshold past it,
    /// the node that notices checks in once per interval, and a node looks for due triggers once per
    /// interval (Quartz's idle wait is set to it). Defaults: 3 × 5 s + 10 s = 25 s.
    /// </summary>
    public TimeSpan TakeoverBound => 3 * CheckinInterval + CheckinMisfireThreshold;

    /// <summary>
    /// Parses <c>cluster: { name, nodeId, checkinIntervalSeconds, checkinMisfireThresholdSeconds, misfireThresholdSeconds, threads }</c>,
    /// adding every problem with file and line to the reader's errors.
    /// </summary>
    public static ClusterSettings Parse(MappingReader root)
    {
        if (!root.Has("cluster") || root.Mapping("cluster", required: true) is not { } c) return Default;
        var d = Default;
        var name = c.String("name", Identifier, "a cluster name (letters, digits, '.', '_', '-'; up to 64)") ?? d.Name;
        var node = c.String("nodeId", Identifier, "a node id (letters, digits, '.', '_', '-'; up to 64)");
        var checkin = c.Int("checkinIntervalSeconds", 1, 300) is { } ci ? TimeSpan.FromSeconds(ci) : d.CheckinInterval;
        var threshold = c.Int("checkinMisfireThresholdSeconds", 1, 600) is { } ct ? TimeSpan.FromSeconds(ct) : d.CheckinMisfireThreshold;
        var misfire = c.Int("misfireThresholdSeconds", 1, 86400) is { } mt ? TimeSpan.FromSeconds(mt) : d.MisfireThreshold;
        var threads = c.Int("threads", 1, 64) ?? d.Threads;
        if (threshold < checkin)
            c.KeyError("checkinMisfireThresholdSeconds", $"the check-in misfire threshold ({threshold.TotalSeconds:0} s) is shorter than the check-in interval ({checkin.TotalSeconds:0} s)",
                "a node that is merely slow to check in would be declared dead and its work run twice; make the threshold at least the interval (twice is a safe choice)");
        c.Done();
        return new ClusterSettings(name, node, checkin, threshold, misfire, threads);
    }

    private static readonly System.Text.RegularExpressions.Regex Identifier = new("^[A-Za-z0-9._-]{1,64}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);
}
