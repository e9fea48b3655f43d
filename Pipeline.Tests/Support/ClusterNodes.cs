using Pipeline.Engine.Ledger;
using Pipeline.Registry.Distribution;

namespace Pipeline.Tests.Support;

/// <summary>
/// Engine configurations for several daemons of one cluster on one scenario: the same database,
/// pipeline definitions and signing key, each node with its own work folder (as on separate hosts),
/// a cluster named after the scenario (so other tests' daemons on the database never join it) and
/// short check-in times so takeovers are quick.
/// </summary>
public sealed class ClusterNodes
{
    public const int CheckinSeconds = 1, MisfireThresholdSeconds = 2;

    private readonly Scenario _s;

    public ClusterNodes(Scenario s)
    {
        _s = s;
        var key = Path.Combine(s.Root, "keys", "engine.pem");
        if (!File.Exists(key))
        {
            using var k = Pipeline.Engine.Attestations.EngineSigningKey.Generate();
            k.WritePrivatePem(key);
        }
    }

    /// <summary>The configuration file of node <paramref name="node"/> (written once).</summary>
    public string Config(string node)
    {
        var path = Path.Combine(_s.Root, $"engine-{node}.yaml");
        if (File.Exists(path)) return path;
        var text = File.ReadAllText(_s.ConfigPath).Replace("workDir: work\n", $"workDir: work-{node}\n", StringComparison.Ordinal);
        if (!text.Contains($"workDir: work-{node}", StringComparison.Ordinal)) Assert.Fail("the harness's engine.yaml changed: no 'workDir: work' line");
        File.WriteAllText(path, text.TrimEnd() + $"""

            attestation:
              signingKeyFile: keys/engine.pem
            cluster:
              name: {_s.Name}
              nodeId: {node}
              checkinIntervalSeconds: {CheckinSeconds}
              checkinMisfireThresholdSeconds: {MisfireThresholdSeconds}
              threads: 2

            """);
        return path;
    }

    public string WorkDir(string node) => Path.Combine(_s.Root, $"work-{node}");

    /// <summary>Starts <c>pipeline daemon</c> as node <paramref name="node"/>.</summary>
    public EngineProcess Start(string node, Func<string, bool>? when = null, Action<EngineProcess>? act = null, IReadOnlyDictionary<string, string>? environment = null) =>
        EngineProcess.Start(["daemon", "--config", Config(node)], when ?? (_ => false), act ?? (_ => { }), environment);

    /// <summary>
    /// The end state the fault suite asserts for every published tag: exactly one accepted delivery
    /// (the others retried), none running or pending; the registry's tag is the accepted image and
    /// every attempt that recorded a push pushed that same image; VCS B has the tag once, at the
    /// supplier's tag object; the ledger verifies; no work folder is left.
    /// </summary>
    public async Task AssertExactlyOnceAsync(IReadOnlyList<string> tags, params string[] nodes)
    {
        var ledger = new LedgerStore(_s.Harness.Database.DataSource(), TimeProvider.System);
        using var registry = new RegistryClient(new RegistryEndpoint(new Uri("http://" + _s.Harness.Registry)));
        foreach (var tag in tags)
        {
            var rows = await ledger.FindDeliveriesAsync(_s.Name, tag, default);
            Assert.That(rows.Count(r => r.Status == DeliveryStatus.Accepted), Is.EqualTo(1), $"{tag}: exactly one accepted delivery; rows: " + Describe(rows));
            Assert.That(rows.All(r => r.Status is DeliveryStatus.Accepted or DeliveryStatus.Retried), Is.True, $"{tag}: nothing running, pending or rejected: " + Describe(rows));
            var accepted = rows.Single(r => r.Status == DeliveryStatus.Accepted);
            var images = accepted.Image!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(images, Has.Length.EqualTo(1), $"{tag}: one image");
            var digest = images[0][(images[0].IndexOf('@') + 1)..];
            var byTag = await registry.GetManifestAsync(_s.RegistryRepository, tag);
            Assert.That(byTag.Digest.ToString(), Is.EqualTo(digest), $"{tag}: the registry's tag is the accepted image");
            foreach (var r in rows)
            {
                var push = (await ledger.ReadAsync(r.Id, default)).Where(e => e.Record.Stage == "push" && e.Record.Verdict == Verdict.Passed).ToList();
                Assert.That(push.Count, Is.LessThanOrEqualTo(1), $"{tag}: one push entry per attempt");
                if (push.Count == 1) Assert.That(push[0].Record.OutputDigest, Is.EqualTo(accepted.Image), $"{tag}: attempt {r.Attempt} pushed the same image");
            }

            var vcsB = Shell.Run("git", ["--git-dir", _s.InternalBare, "for-each-ref", "--format=%(objectname)", "refs/tags/" + tag]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(vcsB, Is.EqualTo(new[] { accepted.TagObjectId }), $"{tag}: VCS B has the tag once, at the supplier's tag object");
        }

        var vcsBTags = Shell.Run("git", ["--git-dir", _s.InternalBare, "tag", "--list"]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(vcsBTags, Is.EquivalentTo(tags), "VCS B has exactly the delivered tags");
        Assert.That(await ledger.VerifyChainAsync(default), Is.Null, "the ledger verifies");
        foreach (var node in nodes)
        {
            var runs = Path.Combine(WorkDir(node), "runs");
            Assert.That(Directory.Exists(runs) ? Directory.GetFileSystemEntries(runs) : [], Is.Empty, $"node {node} left no work folder");
        }
    }

    private static string Describe(IEnumerable<DeliveryRow> rows) => string.Join("; ", rows.Select(r => $"{r.Attempt} {r.Status} {r.ReasonCode}"));
}
