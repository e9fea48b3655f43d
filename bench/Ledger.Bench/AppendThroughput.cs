// The one-entry append path under concurrency: K appenders per process, each appending one entry at
// a time (what deliveries do), in 1 and in 2 processes at once (two engines on one database), with
// group commit and with the one-by-one path before it (the baseline), in the same run.
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

internal static class AppendThroughput
{
    public const string Origin = "bench.example/ledger";
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private static readonly string[] Stages = ["fetch", "verify", "scan", "publish", "build", "push"];

    public sealed record Measure(string Path, int Processes, int Appenders, long Entries, double Seconds, IReadOnlyList<double> PerProcess)
    {
        public double Rate => Entries / Seconds;
    }

    /// <summary>Baseline and group commit, each with 1 and with 2 processes; <paramref name="count"/> entries per measure.</summary>
    public static async Task<IReadOnlyList<Measure>> RunAllAsync(string conn, string keyFile, int count, int appenders, TextWriter o)
    {
        var list = new List<Measure>();
        foreach (var processes in new[] { 1, 2 })
        foreach (var group in new[] { false, true })
        {
            var m = await MeasureAsync(conn, keyFile, group, processes, count, appenders);
            list.Add(m);
            o.WriteLine($"one-entry appends, {m.Path,-12} {processes} process(es) x {appenders} appenders: {m.Entries,7:N0} in {m.Seconds,6:F1} s = {m.Rate,7:N0} entries/s" +
                        (processes > 1 ? $" (each process: {string.Join(", ", m.PerProcess.Select(x => x.ToString("F1", Inv) + " s"))})" : ""));
        }

        return list;
    }

    /// <summary>
    /// Runs <paramref name="processes"/> - 1 child processes of this bench (<c>--append-worker</c>) and this
    /// one at once; each appends its share with <paramref name="appenders"/> concurrent appenders. The
    /// rate is all entries over the slowest process's time.
    /// </summary>
    private static async Task<Measure> MeasureAsync(string conn, string keyFile, bool group, int processes, int count, int appenders)
    {
        var share = count / processes;
        var children = new List<Process>();
        try
        {
            for (var p = 1; p < processes; p++)
            {
                var psi = new ProcessStartInfo(Environment.ProcessPath!)
                {
                    RedirectStandardInput = true,
                    RedirectStandardOutput = true,
                    UseShellExecute = false,
                };
                foreach (var a in new[] { "--append-worker", group ? "group" : "baseline", "--conn", conn, "--key", keyFile, "--count", share.ToString(Inv), "--appenders", appenders.ToString(Inv) })
                    psi.ArgumentList.Add(a);
                var child = Process.Start(psi)!;
                children.Add(child);
                var ready = await child.StandardOutput.ReadLineAsync();
                if (ready != "ready") throw new InvalidOperationException($"append worker did not start: {ready}");
            }

            await using var ds = NpgsqlDataSource.Create(conn);
            using var key = EngineSigningKey.FromPemFile(keyFile);
            var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, null)) { GroupCommit = group };
            var delivery = await NewDeliveryAsync(ds);
            foreach (var c in children) await c.StandardInput.WriteLineAsync("go");
            var local = await AppendAsync(store, delivery, share, appenders);
            var seconds = local;
            var perProcess = new List<double> { local };
            foreach (var c in children)
            {
                var done = (await c.StandardOutput.ReadLineAsync() ?? "").Split(' ');
                if (done.Length != 3 || done[0] != "done") throw new InvalidOperationException($"append worker failed: {string.Join(' ', done)}");
                perProcess.Add(double.Parse(done[2], Inv));
                seconds = Math.Max(seconds, perProcess[^1]);
                await c.WaitForExitAsync();
            }

            return new Measure(group ? "group commit" : "baseline", processes, appenders, (long)share * processes, seconds, perProcess);
        }
        finally
        {
            foreach (var c in children)
            {
                if (!c.HasExited) c.Kill();
                c.Dispose();
            }
        }
    }

    /// <summary>The child's side: prepare, say "ready", wait for "go", append, say "done COUNT SECONDS".</summary>
    public static async Task<int> WorkerAsync(string[] args)
    {
        string? Arg(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        var group = Arg("--append-worker") == "group";
        var count = int.Parse(Arg("--count")!, Inv);
        var appenders = int.Parse(Arg("--appenders")!, Inv);
        await using var ds = NpgsqlDataSource.Create(Arg("--conn")!);
        using var key = EngineSigningKey.FromPemFile(Arg("--key")!);
        var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, Origin, null)) { GroupCommit = group };
        var delivery = await NewDeliveryAsync(ds);
        Console.WriteLine("ready");
        if (Console.ReadLine() != "go") return 2;
        var seconds = await AppendAsync(store, delivery, count, appenders);
        Console.WriteLine($"done {count} {seconds.ToString("R", Inv)}");
        return 0;
    }

    /// <summary>Appends <paramref name="count"/> entries, one at a time per appender; returns the seconds taken.</summary>
    private static async Task<double> AppendAsync(LedgerStore store, Guid delivery, int count, int appenders)
    {
        var next = -1;
        var sw = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(_ => Task.Run(async () =>
        {
            int n;
            while ((n = Interlocked.Increment(ref next)) < count)
            {
                var stage = Stages[n % Stages.Length];
                await store.AppendAsync(new StageRecord(delivery, "bench-append", stage, Verdict.Passed, null, null, $"sha256:ee{n:x62}", $"sha256:ef{n:x62}",
                    new Dictionary<string, string> { ["n"] = n.ToString(Inv) }), default);
            }
        })));
        return sw.Elapsed.TotalSeconds;
    }

    private static async Task<Guid> NewDeliveryAsync(NpgsqlDataSource ds)
    {
        var id = Guid.CreateVersion7();
        await using var cmd = ds.CreateCommand("insert into deliveries (id, pipeline, tag, tag_object_id, status, started_at) values ($1, 'bench-append', $2, $3, 'running', now())");
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue("v" + id.ToString("N")[..8]);
        cmd.Parameters.Add(new NpgsqlParameter { Value = new string('a', 40), NpgsqlDbType = NpgsqlDbType.Text });
        await cmd.ExecuteNonQueryAsync();
        return id;
    }
}
