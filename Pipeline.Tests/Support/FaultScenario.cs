using Npgsql;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;

namespace Pipeline.Tests.Support;

/// <summary>
/// One pipeline of the fault suite on private services (<see cref="PrivatePostgres"/>, a private
/// clamd, registry and VCS B), run by two engine nodes as real <c>pipeline</c> processes, each with
/// its own work folder. The test pauses a node at an exact point (<see cref="UnsafeTestFault"/>),
/// breaks a service, lets the node go on, and asserts the end state.
/// </summary>
public sealed class FaultScenario
{
    private readonly string _database;
    private readonly string _registry;

    public FaultScenario(Scenario s, string database, string connectionString, string registry, string internalBare)
    {
        S = s;
        _database = database;
        ConnectionString = connectionString;
        _registry = registry;
        InternalBare = internalBare;
        Nodes = new ClusterNodes(s);
    }

    public Scenario S { get; }
    public string ConnectionString { get; }
    public string InternalBare { get; }
    public ClusterNodes Nodes { get; }
    public string Tag => "v1.0.0";

    public LedgerStore Ledger() => new(NpgsqlDataSource.Create(ConnectionString), TimeProvider.System);

    /// <summary>The file whose existence lets a paused node go on.</summary>
    public string ReleaseFile(string node) => Path.Combine(S.Root, $"release-{node}");

    /// <summary><c>pipeline run</c> as node <paramref name="node"/>, paused at <paramref name="pauseAt"/> when given.</summary>
    public EngineProcess Run(string node, string? pauseAt = null)
    {
        var env = new Dictionary<string, string>();
        if (pauseAt is not null)
        {
            env[UnsafeTestFault.PauseVariable] = pauseAt;
            env[UnsafeTestFault.PauseFileVariable] = ReleaseFile(node);
        }

        return EngineProcess.Start(["run", S.Name, "--config", Nodes.Config(node)], _ => false, _ => { }, env);
    }

    /// <summary>Waits (polling with a deadline) until node <paramref name="node"/> says it is paused.</summary>
    public async Task WaitPausedAsync(string node, EngineProcess p)
    {
        var marker = ReleaseFile(node) + ".paused";
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(marker))
        {
            if (p.HasExited) Assert.Fail($"node {node} ended before it reached its pause point:\n{p.Log}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"node {node} did not reach its pause point within 60 s:\n{p.Log}");
            await Task.Delay(50);
        }
    }

    public void Release(string node) => File.WriteAllText(ReleaseFile(node), "go\n");

    /// <summary>One whole pass of node <paramref name="node"/> (a <c>pipeline run</c> process); returns its exit code and log.</summary>
    public async Task<(int Rc, string Log)> PassAsync(string node)
    {
        using var p = Run(node);
        var rc = await p.WaitAsync(TimeSpan.FromMinutes(2));
        return (rc, p.Log);
    }

    /// <summary>A short <c>pipeline</c> command with node <paramref name="node"/>'s configuration, in this process (saves a process start).</summary>
    public async Task<(int Rc, string Log)> CliAsync(string node, params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var rc = await Pipeline.Engine.Cli.PipelineCli.RunAsync([.. args, "--config", Nodes.Config(node)], stdout, stderr);
        return (rc, stdout + "\n" + stderr);
    }

    /// <summary>
    /// Makes the pending delivery due now (<c>pipeline retry</c>, the operator's way) and runs a pass
    /// of node <paramref name="node"/>, which must accept it.
    /// </summary>
    public async Task RetryOnAsync(string node, Guid pending)
    {
        var (rc, log) = await CliAsync(node, "retry", pending.ToString());
        Assert.That(rc, Is.EqualTo(0), log);
        (rc, log) = await PassAsync(node);
        Assert.That(rc, Is.EqualTo(0), log);
        Assert.That(log, Does.Contain("ACCEPTED"));
    }

    /// <summary>
    /// The end state of every fault: one accepted delivery (the other attempts retried), nothing
    /// running or pending; the registry has one tag of the repository, the accepted image, and every
    /// attempt that recorded a push pushed that same image; VCS B has the one tag, at the supplier's
    /// tag object; <c>pipeline ledger --verify</c> passes; no pipeline lock is held, and neither
    /// node left a work folder or a temporary blob.
    /// </summary>
    public async Task AssertExactlyOnceAsync()
    {
        var ledger = Ledger();
        var rows = await ledger.FindDeliveriesAsync(S.Name, Tag, default);
        var described = string.Join("; ", rows.Select(r => $"{r.Attempt} {r.Status} {r.ReasonCode}"));
        Assert.That(rows.Count(r => r.Status == DeliveryStatus.Accepted), Is.EqualTo(1), "exactly one accepted delivery: " + described);
        Assert.That(rows.All(r => r.Status is DeliveryStatus.Accepted or DeliveryStatus.Retried), Is.True, "nothing running, pending or rejected: " + described);
        var accepted = rows.Single(r => r.Status == DeliveryStatus.Accepted);
        var images = accepted.Image!.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(images, Has.Length.EqualTo(1), "one image");
        foreach (var r in rows)
        {
            var entries = await ledger.ReadAsync(r.Id, default);
            var push = entries.Where(e => e.Record.Stage == "push" && e.Record.Verdict == Verdict.Passed).ToList();
            Assert.That(push.Count, Is.LessThanOrEqualTo(1), "one push entry per attempt");
            if (push.Count == 1) Assert.That(push[0].Record.OutputDigest, Is.EqualTo(accepted.Image), $"attempt {r.Attempt} pushed the same image");
            Assert.That(entries.GroupBy(e => e.Record.Stage).Where(g => g.Count() > 1).Select(g => g.Key), Is.Empty, $"attempt {r.Attempt}: no stage recorded twice");
        }

        using (var http = new HttpClient())
        {
            var list = await http.GetStringAsync($"http://{_registry}/v2/{S.RegistryRepository}/tags/list");
            var tags = System.Text.Json.JsonDocument.Parse(list).RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()!)
                .Where(t => !t.StartsWith("sha256-", StringComparison.Ordinal)).ToList();
            Assert.That(tags, Is.EqualTo(new[] { Tag }), "the registry has one image tag");
        }

        using var registry = new RegistryClient(new RegistryEndpoint(new Uri("http://" + _registry)));
        var byTag = await registry.GetManifestAsync(S.RegistryRepository, Tag);
        Assert.That(byTag.Digest.ToString(), Is.EqualTo(images[0][(images[0].IndexOf('@') + 1)..]), "the registry's tag is the accepted image");

        var vcsB = Shell.Run("git", ["--git-dir", InternalBare, "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags/"]).EnsureSuccess("list VCS B tags").Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(vcsB, Is.EqualTo(new[] { $"refs/tags/{Tag} {accepted.TagObjectId}" }), "VCS B has the one tag, at the supplier's tag object");

        var (rc, log) = await CliAsync("b", "ledger", "--verify");
        Assert.That(rc, Is.EqualTo(0), "pipeline ledger --verify:\n" + log);
        Assert.That(await ledger.VerifyChainAsync(default), Is.Null, "the ledger's hash chain verifies");
        Assert.That(await AdvisoryLocksAsync(), Is.Zero, "no pipeline lock is left");
        foreach (var node in new[] { "a", "b" })
        {
            var runs = Path.Combine(Nodes.WorkDir(node), "runs");
            Assert.That(Directory.Exists(runs) ? Directory.GetFileSystemEntries(runs) : [], Is.Empty, $"node {node} left no work folder");
            var tmp = Path.Combine(Nodes.WorkDir(node), "blobs", "tmp");
            Assert.That(Directory.Exists(tmp) ? Directory.GetFiles(tmp) : [], Is.Empty, $"node {node} left no temporary blob");
        }
    }

    /// <summary>Nothing is pushed after a fault that stopped a node before the push: no tag in VCS B, none in the registry.</summary>
    public async Task AssertNothingPublishedAsync()
    {
        Assert.That(Shell.Run("git", ["--git-dir", InternalBare, "tag", "--list"]).Stdout.Trim(), Is.Empty, "nothing published to VCS B");
        using var registry = new RegistryClient(new RegistryEndpoint(new Uri("http://" + _registry)));
        Assert.That(async () => await registry.GetManifestAsync(S.RegistryRepository, Tag), Throws.Exception, "nothing pushed to the registry");
    }

    private async Task<long> AdvisoryLocksAsync()
    {
        await using var ds = NpgsqlDataSource.Create(ConnectionString);
        await using var cmd = ds.CreateCommand("select count(*) from pg_locks l join pg_database d on d.oid = l.database where l.locktype = 'advisory' and d.datname = $1");
        cmd.Parameters.AddWithValue(_database);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync());
    }
}
