// Ledger benchmark: appends to the transparency log in a fresh PostgreSQL database, then measures
// inclusion proofs, traces and a full `audit verify` at that size. See bench/ledger/run.sh.
using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;

if (args.Length > 0 && args[0] == "--append-worker") return await AppendThroughput.WorkerAsync(args);

var inv = CultureInfo.InvariantCulture;
long entries = 1_000_000;
int batch = 5_000, single = 2_000, samples = 1_000, traces = 200, appenders = 8;
string? conn = Environment.GetEnvironmentVariable("PIPELINE_PG_CONN");
var keep = false;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--entries": entries = long.Parse(Next().Replace("_", "", StringComparison.Ordinal), inv); break;
        case "--batch": batch = int.Parse(Next(), inv); break;
        case "--single": single = int.Parse(Next(), inv); break;
        case "--samples": samples = int.Parse(Next(), inv); break;
        case "--traces": traces = int.Parse(Next(), inv); break;
        case "--appenders": appenders = int.Parse(Next(), inv); break;
        case "--conn": conn = Next(); break;
        case "--keep": keep = true; break;
        default:
            Console.Error.WriteLine("usage: Ledger.Bench [--entries 1000000] [--batch 5000] [--single 2000] [--appenders 8] [--samples 1000] [--traces 200] [--conn CONNSTRING] [--keep]");
            return 2;
    }
}

if (string.IsNullOrEmpty(conn))
{
    Console.Error.WriteLine("no PostgreSQL connection: set PIPELINE_PG_CONN or pass --conn");
    return 2;
}

single = (int)Math.Min(single, entries / 4);
const int StagesPerDelivery = 6;
string[] stages = ["fetch", "verify", "scan", "publish", "build", "push"];
var dbName = "ledger_bench_" + Guid.NewGuid().ToString("N")[..10];
var admin = new NpgsqlConnectionStringBuilder(conn);
var target = new NpgsqlConnectionStringBuilder(conn) { Database = dbName, MaxPoolSize = 8 };
await using (var a = new NpgsqlConnection(admin.ConnectionString))
{
    await a.OpenAsync();
    await using var c = new NpgsqlCommand($"create database {dbName}", a);
    await c.ExecuteNonQueryAsync();
}

Console.WriteLine($"ledger bench: {entries:N0} entries ({single:N0} one-entry appends in each of 4 measures, the rest in batches of {batch:N0}), database {dbName}, {Environment.ProcessorCount} cores");
var exit = 0;
try
{
    await using var ds = NpgsqlDataSource.Create(target.ConnectionString);
    using var key = EngineSigningKey.Generate();
    const string origin = AppendThroughput.Origin;
    var keyFile = Path.Combine(Path.GetTempPath(), dbName + "-key.pem");
    key.WritePrivatePem(keyFile);
    var store = new LedgerStore(ds, TimeProvider.System, new LogSigning(key, origin, null));
    await store.MigrateAsync(default);
    var audit = new AuditService(store, new KeyRing([key.Public]), origin);

    var deliveries = new List<Guid>();
    var pushDigests = new List<string>();
    StageRecord Record(long n)
    {
        var d = deliveries[(int)(n / StagesPerDelivery)];
        var s = (int)(n % StagesPerDelivery);
        var output = $"sha256:{n + 1:x64}";
        if (s == StagesPerDelivery - 1) pushDigests.Add(output);
        return new StageRecord(d, "bench", stages[s], Verdict.Passed, null, null, s == 0 ? null : $"sha256:{n:x64}", output,
            new Dictionary<string, string> { ["n"] = n.ToString(inv), ["tag"] = $"v{n / StagesPerDelivery}.0.0" });
    }

    // Delivery rows are setup (the engine writes one per delivery), inserted in bulk and not timed.
    async Task AddDeliveries(long upTo)
    {
        var need = (int)((upTo + StagesPerDelivery - 1) / StagesPerDelivery) - deliveries.Count;
        if (need <= 0) return;
        await using var c = await ds.OpenConnectionAsync();
        await using var copy = await c.BeginBinaryImportAsync("copy deliveries (id, pipeline, tag, tag_object_id, status, started_at) from stdin (format binary)");
        for (var k = 0; k < need; k++)
        {
            var id = Guid.CreateVersion7();
            deliveries.Add(id);
            await copy.StartRowAsync();
            await copy.WriteAsync(id, NpgsqlDbType.Uuid);
            await copy.WriteAsync("bench", NpgsqlDbType.Text);
            await copy.WriteAsync($"v{deliveries.Count - 1}.0.0", NpgsqlDbType.Text);
            await copy.WriteAsync(new string('a', 40), NpgsqlDbType.Text);
            await copy.WriteAsync("accepted", NpgsqlDbType.Text);
            await copy.WriteAsync(DateTimeOffset.UtcNow, NpgsqlDbType.TimestampTz);
        }

        await copy.CompleteAsync();
    }

    // 1. The engine's path: one entry per append, several appenders per process, 1 and 2 processes
    //    (engines) at once; group commit against the one-by-one path before it (baseline).
    IReadOnlyList<AppendThroughput.Measure> one;
    try
    {
        one = await AppendThroughput.RunAllAsync(target.ConnectionString, keyFile, single, appenders, Console.Out);
    }
    finally
    {
        File.Delete(keyFile);
    }

    var oneEntries = one.Sum(m => m.Entries);
    double RateOf(string path, int processes) => one.Single(m => m.Path == path && m.Processes == processes).Rate;

    // 2. The batch path (imports): one transaction, one lock, COPY per batch; rate reported per 10% of the run.
    var batchEntries = Math.Max(0, entries - oneEntries);
    var batchTotal = Stopwatch.StartNew();
    var window = Stopwatch.StartNew();
    long windowStart = 0, appended = 0;
    var step = Math.Max(batch, batchEntries / 10);
    var worstWindow = double.MaxValue;
    var sw = new Stopwatch();
    while (appended < batchEntries)
    {
        var count = (int)Math.Min(batch, batchEntries - appended);
        batchTotal.Stop();
        await AddDeliveries(appended + count);
        batchTotal.Start();
        window.Start();
        var items = new List<(StageRecord, InTotoStatement?)>(count);
        for (var k = 0; k < count; k++) items.Add((Record(appended + k), null));
        await store.AppendBatchAsync(items, default);
        appended += count;
        window.Stop();
        if (appended - windowStart >= step || appended == batchEntries)
        {
            var rate = (appended - windowStart) / window.Elapsed.TotalSeconds;
            worstWindow = Math.Min(worstWindow, rate);
            Console.WriteLine($"  batch appends up to {oneEntries + appended,10:N0}: {rate,8:N0} appends/s");
            windowStart = appended;
            window.Reset();
        }
    }

    batchTotal.Stop();
    var batchCount = batchEntries;
    var batchRate = batchCount == 0 ? 0 : batchCount / batchTotal.Elapsed.TotalSeconds;
    if (batchCount > 0)
        Console.WriteLine($"batch appends:   {batchCount,10:N0} in {batchTotal.Elapsed.TotalSeconds,7:F1} s = {batchRate,8:N0} appends/s (slowest 10% window {worstWindow:N0}/s)");

    // A bulk load leaves the planner without statistics until autovacuum gets to it; an import
    // should be followed by ANALYZE (a log that grows one delivery at a time gets it from autovacuum).
    sw.Restart();
    await using (var c = await ds.OpenConnectionAsync())
    await using (var analyze = new NpgsqlCommand("analyze log_leaves; analyze log_nodes; analyze ledger_entries", c))
        await analyze.ExecuteNonQueryAsync();
    Console.WriteLine($"analyze:         {sw.Elapsed.TotalSeconds:F1} s (after the bulk load)");

    sw.Restart();
    var cp = await store.CheckpointAsync(default);
    Console.WriteLine($"checkpoint:      size {cp.TreeSize:N0} signed in {sw.Elapsed.TotalMilliseconds:F0} ms");

    // 3. Inclusion proofs from stored nodes, verified, for random leaves.
    var rnd = new Random(42);
    var proofMs = new List<double>();
    for (var k = 0; k < samples; k++)
    {
        var idx = rnd.NextInt64(cp.TreeSize);
        var leaf = (await store.Log.GetLeafAsync(idx, default))!;
        sw.Restart();
        var proof = await store.Log.InclusionProofAsync(idx, cp.TreeSize, default);
        var ok = MerkleProofs.VerifyInclusion(idx, cp.TreeSize, Merkle.LeafHash(leaf.Envelope), proof, cp.RootHash);
        proofMs.Add(sw.Elapsed.TotalMilliseconds);
        if (!ok) throw new InvalidOperationException($"inclusion proof for {idx} did not verify");
    }

    // 4. Traces: by delivery id and by image digest (GIN index on subjects), each checking 6 signatures and 6 proofs.
    var traceMs = new List<double>();
    var traceDigestMs = new List<double>();
    for (var k = 0; k < traces; k++)
    {
        var d = rnd.Next(pushDigests.Count);
        sw.Restart();
        var t = await audit.TraceAsync(deliveries[d].ToString("D"), default);
        traceMs.Add(sw.Elapsed.TotalMilliseconds);
        if (!t.Ok || t.Deliveries.Single().Steps.Count != StagesPerDelivery) throw new InvalidOperationException($"trace of delivery {d} did not verify");
        sw.Restart();
        t = await audit.TraceAsync(pushDigests[d], default);
        traceDigestMs.Add(sw.Elapsed.TotalMilliseconds);
        if (!t.Ok) throw new InvalidOperationException($"trace of digest {pushDigests[d]} did not verify");
    }

    // 5. Full verification: every envelope's signature and leaf hash, every node, checkpoints, the ledger chain.
    sw.Restart();
    var v = await audit.VerifyLogAsync(null, default);
    var verifyS = sw.Elapsed.TotalSeconds;
    Console.WriteLine($"audit verify:    {v.LeavesChecked:N0} envelopes, {v.NodesChecked:N0} nodes, {v.LedgerEntriesChecked:N0} ledger entries in {verifyS:F1} s: {(v.Ok ? "OK" : "PROBLEMS " + v.FirstProblem)}");
    if (!v.Ok) exit = 1;

    static double P(List<double> xs, double q)
    {
        var s = xs.Order().ToList();
        return s[Math.Min(s.Count - 1, (int)Math.Ceiling(q * s.Count) - 1)];
    }

    var scale = entries / 1_000_000.0;
    Console.WriteLine();
    Console.WriteLine($"| measure (at {cp.TreeSize:N0} entries) | result | target |");
    Console.WriteLine("| --- | --- | --- |");
    foreach (var processes in new[] { 1, 2 })
    {
        var baseline = RateOf("baseline", processes);
        var grouped = RateOf("group commit", processes);
        Console.WriteLine($"| entries/s, one-entry path, {processes} process(es) x {appenders} appenders: baseline (1 transaction each) | {baseline:N0} | |");
        Console.WriteLine($"| entries/s, one-entry path, {processes} process(es) x {appenders} appenders: group commit | {grouped:N0} (x{grouped / baseline:F1} baseline) | >= 1,000 |");
    }

    if (batchCount > 0) Console.WriteLine($"| appends/s, batch path (sustained, slowest 10% window) | {batchRate:N0} ({worstWindow:N0}) | >= 1,000 |");
    Console.WriteLine($"| inclusion proof + verify, p50 / p99 ({samples} random leaves) | {P(proofMs, .5):F2} / {P(proofMs, .99):F2} ms | < 5 ms |");
    Console.WriteLine($"| trace by delivery id, p50 / p99 ({traces}) | {P(traceMs, .5):F1} / {P(traceMs, .99):F1} ms | < 50 ms |");
    Console.WriteLine($"| trace by image digest, p50 / p99 ({traces}) | {P(traceDigestMs, .5):F1} / {P(traceDigestMs, .99):F1} ms | < 50 ms |");
    Console.WriteLine($"| full audit verify | {verifyS:F1} s{(scale < 1 ? $" (x{1 / scale:F0} linear: ~{verifyS / scale:F0} s for 1M)" : "")} | < 120 s for 1M |");
}
finally
{
    NpgsqlConnection.ClearAllPools();
    if (!keep)
    {
        await using var a = new NpgsqlConnection(admin.ConnectionString);
        await a.OpenAsync();
        await using var c = new NpgsqlCommand($"drop database if exists {dbName} with (force)", a);
        await c.ExecuteNonQueryAsync();
        Console.WriteLine($"dropped database {dbName}");
    }
    else Console.WriteLine($"kept database {dbName}");
}

return exit;
