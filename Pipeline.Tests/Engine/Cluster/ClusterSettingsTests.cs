using Pipeline.Engine.Cluster;
using Pipeline.Engine.Configuration;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Cluster;

/// <summary>engine.yaml <c>cluster:</c>: sane defaults, validated values, every error with its line.</summary>
public class ClusterSettingsTests
{
    private static (EngineSettings? Settings, ConfigErrors Errors) Parse(TempDir dir, string cluster)
    {
        Directory.CreateDirectory(dir.Combine("pipelines"));
        var path = dir.Combine("engine.yaml");
        File.WriteAllText(path, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "Host=x;Username=y"
            clamd:
              endpoints: [tcp://127.0.0.1:3310]
              limits: {"{"} maxFileSize: 10MiB, maxScanSize: 40MiB, maxRecursion: 5, maxFiles: 300, streamMaxLength: 20MiB {"}"}
            registry:
              url: http://127.0.0.1:5000
            internalGit:
              url: http://127.0.0.1:8088/git/internal
            {cluster}
            """);
        var errors = new ConfigErrors();
        return (EngineSettingsLoader.Parse(path, File.ReadAllText(path), errors), errors);
    }

    [Test]
    public void Without_a_cluster_section_the_defaults_give_a_25_second_takeover_bound()
    {
        using var dir = new TempDir("engine-cluster-");
        var (settings, errors) = Parse(dir, "");
        Assert.That(errors.All, Is.Empty);
        Assert.That(settings!.Cluster, Is.EqualTo(ClusterSettings.Default));
        Assert.That((settings.Cluster.Name, settings.Cluster.NodeId), Is.EqualTo(("pipeline", (string?)null)));
        Assert.That(settings.Cluster.TakeoverBound, Is.EqualTo(TimeSpan.FromSeconds(25)));
    }

    [Test]
    public void The_values_given_are_used()
    {
        using var dir = new TempDir("engine-cluster-");
        var (settings, errors) = Parse(dir, """
            cluster:
              name: zone-a.b
              nodeId: host-1
              checkinIntervalSeconds: 2
              checkinMisfireThresholdSeconds: 4
              misfireThresholdSeconds: 30
              threads: 8
            """);
        Assert.That(errors.All, Is.Empty);
        Assert.That(settings!.Cluster, Is.EqualTo(new ClusterSettings("zone-a.b", "host-1", TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(30), 8)));
        Assert.That(settings.Cluster.TakeoverBound, Is.EqualTo(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public void Every_bad_value_is_reported_at_once_with_its_line_and_why()
    {
        using var dir = new TempDir("engine-cluster-");
        var (settings, errors) = Parse(dir, """
            cluster:
              name: "two words"
              checkinIntervalSeconds: 20
              checkinMisfireThresholdSeconds: 5
              threads: 0
              leader: me
            """);
        Assert.That(settings, Is.Null);
        var messages = errors.All.Select(e => (e.Line, e.Message)).ToList();
        Assert.That(messages, Has.Some.Matches<(int Line, string Message)>(m => m.Line == 13 && m.Message.Contains("not a valid a cluster name")));
        Assert.That(messages, Has.Some.Matches<(int Line, string Message)>(m => m.Line == 15 && m.Message.Contains("shorter than the check-in interval")));
        Assert.That(errors.All.Single(e => e.Line == 15).Hint, Does.Contain("run twice"), "why it matters");
        Assert.That(messages, Has.Some.Matches<(int Line, string Message)>(m => m.Line == 16 && m.Message.Contains("threads")));
        Assert.That(messages, Has.Some.Matches<(int Line, string Message)>(m => m.Line == 17 && m.Message.Contains("leader")));
    }
}
