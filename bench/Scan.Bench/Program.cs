using System.Diagnostics;
using System.Globalization;
using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;

// Scan benchmark: one deterministic (seeded) delivery of mixed file sizes, scanned by
//   1. our client (ClamdPool over IDSESSION connections, N scans in flight, FILDES on unix sockets), 1b. the same with one connection per file,
//   2. our PolicyScanner (the same plus SHA-256, type detection and nesting checks),
//   3. clamdscan --stream, and 4. clamdscan --multiscan --fdpass,
// against the same clamd in the same run. Prints MB/s, files/s, the ratio to the best clamdscan
// mode and our peak memory (VmHWM, reset after the files are generated).
var opts = Args.Parse(args);
var inv = CultureInfo.InvariantCulture;
Directory.CreateDirectory(opts.Dir);
var files = Generate(opts.Dir, opts.Size, opts.Files, opts.Seed);
var total = files.Sum(f => f.Size);
Console.WriteLine(string.Create(inv, $"delivery: {files.Count} files, {total / 1e6:0.0} MB (seed {opts.Seed}, smallest {files.Min(f => f.Size)} B, largest {files.Max(f => f.Size) / 1e6:0.0} MB) in {opts.Dir}"));
Console.WriteLine($"clamd: {string.Join(", ", opts.Endpoints)}; clamdscan config: {opts.ClamdConf}");

// Warm the page cache so that no mode pays for the first read from disk.
var buf = new byte[1 << 20];
foreach (var f in files)
{
    using var s = File.OpenRead(Path.Combine(opts.Dir, f.Rel));
    while (s.Read(buf) > 0) { }
}
buf = null;
GC.Collect();
ResetPeak();

var transport = opts.Endpoints[0].StartsWith("unix://", StringComparison.Ordinal) && !opts.NoFdPass ? "FILDES" : "INSTREAM";
// Parallelism: sized from clamd's MaxThreads (from STATS).
var endpoints = opts.Endpoints.Select(ClamdEndpoint.Parse).ToList();
using var probe = new ClamdPool(endpoints, new ClamdPoolOptions { UseSessions = false }, TimeProvider.System);
var stats = (await probe.StatsAsync(CancellationToken.None)).First().Stats;
// Default: 4 x MaxThreads in flight, so clamd always has queued work and never waits for this (possibly
// descheduled) client between two files; clamd itself runs at most MaxThreads at once.
if (opts.Parallel <= 0) opts = opts with { Parallel = Math.Max(1, stats.MaxThreads) * 4 };
Console.WriteLine($"clamd config ({opts.ClamdConf}):");
foreach (var line in File.ReadLines(opts.ClamdConf).Where(l => l.Length > 0 && !l.StartsWith('#')))
    Console.WriteLine("  " + line);
Console.WriteLine(string.Create(inv, $"clamd STATS: threads max {stats.MaxThreads}, live {stats.LiveThreads}, idle {stats.IdleThreads}; cores here: {Environment.ProcessorCount}"));
await using var pool = new ClamdPool(endpoints, new ClamdPoolOptions { Parallelism = opts.Parallel, PassFileDescriptors = !opts.NoFdPass, UseSessions = true, SessionsPerEndpoint = opts.Sessions }, TimeProvider.System);
await using var perConnection = new ClamdPool(endpoints, new ClamdPoolOptions { Parallelism = opts.Parallel, PassFileDescriptors = !opts.NoFdPass, UseSessions = false }, TimeProvider.System);
var version = await pool.VersionAsync(CancellationToken.None);
Console.WriteLine($"scanner: {version}; our client {(pool.CanPassFileDescriptors ? "passes open files (FILDES)" : "streams (INSTREAM)")}, {opts.Parallel} in parallel over {opts.Sessions} IDSESSION connection(s); {opts.Rounds} round(s), modes interleaved (order rotated each round), best and median reported");
// Warm-up (JIT, connections): the first 20 files, not timed.
foreach (var f in files.Take(20))
{
    var full = Path.Combine(opts.Dir, f.Rel);
    using var h = File.OpenHandle(full);
    await pool.ScanAsync(() => File.OpenRead(full), h, CancellationToken.None);
    await perConnection.ScanAsync(() => File.OpenRead(full), h, CancellationToken.None);
}

async Task<string> RunOurs(ClamdPool p)
{
    var infected = 0;
    var errors = 0;
    // Largest first, as PolicyScanner does (clamdscan goes in directory order).
    await Parallel.ForEachAsync(files.OrderByDescending(f => f.Size), new ParallelOptions { MaxDegreeOfParallelism = opts.Parallel }, async (f, ct) =>
    {
        var full = Path.Combine(opts.Dir, f.Rel);
        using var handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        var (r, _) = await p.ScanAsync(() => new FileStream(full, new FileStreamOptions
        {
            Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, BufferSize = 0,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
        }), handle, ct);
        if (r.Verdict == ClamdVerdict.Infected) Interlocked.Increment(ref infected);
        if (r.Verdict == ClamdVerdict.Error) Interlocked.Increment(ref errors);
    });
    if (errors > 0) throw new InvalidOperationException($"{errors} scan errors: the benchmark run is invalid");
    return $"{infected} infected, {errors} errors";
}

var policy = new ScanPolicy("bench", ScanPolicy.VersionOf("bench"u8), null, new Dictionary<string, ScanProfile> { ["normal"] = new("normal") }, []);
var modes = new List<(string Name, Func<Task<string>> Run)>
{
    ($"ours: ClamdPool {transport} IDSESSION, {opts.Parallel} parallel", () => RunOurs(pool)),
    ($"ours: ClamdPool {transport} conn/file, {opts.Parallel} parallel", () => RunOurs(perConnection)),
    ($"ours: PolicyScanner {transport} (+sha256, types), {opts.Parallel} par.", async () =>
    {
        var verdict = await new PolicyScanner(pool, ClamdLimits.Load(opts.ClamdConf, []) ?? throw new InvalidOperationException("cannot read " + opts.ClamdConf), TimeProvider.System).ScanAsync(opts.Dir, files.Select(f => f.Rel).ToList(), policy, "normal", CancellationToken.None);
        return $"decision {verdict.Decision}, {verdict.Findings.Count()} findings";
    }),
    ("clamdscan --stream", () => Task.FromResult(RunClamdscan(opts, ["--stream"]))),
    ("clamdscan --multiscan --fdpass", () => Task.FromResult(RunClamdscan(opts, ["--multiscan", "--fdpass"]))),
};
var times = modes.ToDictionary(m => m.Name, _ => new List<double>());
var notes = new Dictionary<string, string>();
// One untimed warm-up round of every mode (JIT, connections, clamd's threads, caches), then the timed rounds. Whatever
// mode runs first after start-up is 2-3x slower (measured for ours and for clamdscan alike), hence this round.
foreach (var (name, run) in Enumerable.Reverse(modes))
{
    var sw = Stopwatch.StartNew();
    await run();
    Console.Error.WriteLine(string.Create(inv, $"  warm-up (not counted): {name}: {sw.Elapsed.TotalSeconds:0.00} s"));
}
for (var round = 0; round < opts.Rounds; round++)
{
    // Rotate the order every round so that no mode always runs first/after the same neighbour.
    foreach (var (name, run) in modes.Skip(round % modes.Count).Concat(modes.Take(round % modes.Count)))
    {
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        notes[name] = await run();
        times[name].Add(sw.Elapsed.TotalSeconds);
        var cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        if (!name.StartsWith("clamdscan", StringComparison.Ordinal)) notes[name] += string.Create(inv, $"; client CPU {cpu:0.00} s");
        Console.Error.WriteLine(string.Create(inv, $"  round {round + 1}/{opts.Rounds}: {name}: {sw.Elapsed.TotalSeconds:0.00} s"));
    }
}
var peakMb = PeakMb(); // clamdscan runs in its own process; VmHWM is ours only
var results = modes.Select(m => (Mode: m.Name, Seconds: times[m.Name].Min(), Note: notes[m.Name] + $" (rounds: {string.Join(" ", times[m.Name].Select(t => t.ToString("0.00", inv)))} s)")).ToList();

static double Median(List<double> xs)
{
    var o = xs.Order().ToList();
    return o.Count % 2 == 1 ? o[o.Count / 2] : (o[o.Count / 2 - 1] + o[o.Count / 2]) / 2;
}
var medians = modes.ToDictionary(m => m.Name, m => Median(times[m.Name]));
var best = results.Where(r => r.Mode.StartsWith("clamdscan", StringComparison.Ordinal) && r.Seconds > 0).Min(r => r.Seconds);
var bestMedian = modes.Where(m => m.Name.StartsWith("clamdscan", StringComparison.Ordinal)).Min(m => medians[m.Name]);
Console.WriteLine();
Console.WriteLine($"{"mode",-52} {"best s",7} {"MB/s",7} {"files/s",7} {"median s",8} {"MB/s",7} {"files/s",7}");
foreach (var r in results)
{
    var m = medians[r.Mode];
    Console.WriteLine(string.Create(inv, $"{r.Mode,-52} {r.Seconds,7:0.00} {total / 1e6 / r.Seconds,7:0.0} {files.Count / r.Seconds,7:0.0} {m,8:0.00} {total / 1e6 / m,7:0.0} {files.Count / m,7:0.0}  {r.Note}"));
}
Console.WriteLine(string.Create(inv, $"peak memory of this process while scanning (VmHWM): {peakMb:0.0} MB (target < 200 MB)"));
var ours = results[0].Seconds;
var oursMedian = medians[modes[0].Name];
var bestName = results.Where(r => r.Mode.StartsWith("clamdscan", StringComparison.Ordinal)).MinBy(r => medians[r.Mode]).Mode;
Console.WriteLine(string.Create(inv, $"policy scanner (+sha256, types) vs best clamdscan, median: {bestMedian / medians[modes[2].Name]:0.00}x"));
Console.WriteLine(string.Create(inv, $"per-connection mode vs best clamdscan, median: {bestMedian / medians[modes[1].Name]:0.00}x"));
// Paired: in each round, the best clamdscan time of that round over ours in that round (the modes of one round
// run back to back, so they share the machine's load at that time); the median over rounds.
var paired = Enumerable.Range(0, opts.Rounds).Select(r => modes.Where(m => m.Name.StartsWith("clamdscan", StringComparison.Ordinal)).Min(m => times[m.Name][r]) / times[modes[0].Name][r]).ToList();
Console.WriteLine(string.Create(inv, $"paired per-round ratios (clamdscan best of the round / ours): {string.Join(" ", paired.Select(x => x.ToString("0.00", inv)))}; median {Median(paired):0.00}x"));
Console.WriteLine(string.Create(inv, $"ratio (ours / best clamdscan, best round): {best / ours:0.00}x"));
Console.WriteLine(string.Create(inv, $"ratio (ours / best clamdscan, median): {bestMedian / oursMedian:0.00}x  (best clamdscan mode: {bestName}; ours {total / 1e6 / oursMedian:0.0} MB/s, {files.Count / oursMedian:0.0} files/s) — target >= 1.00: {(bestMedian / oursMedian >= 1.0 ? "met" : "NOT met")}"));
return 0;

static string RunClamdscan(Args o, string[] mode)
{
    var psi = new ProcessStartInfo("clamdscan") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    foreach (var a in new[] { "-c", o.ClamdConf, "--no-summary", "--infected" }.Concat(mode).Append(o.Dir)) psi.ArgumentList.Add(a);
    var sw = Stopwatch.StartNew();
    using var p = Process.Start(psi)!;
    var outTask = p.StandardOutput.ReadToEndAsync();
    var errTask = p.StandardError.ReadToEndAsync();
    p.WaitForExit();
    var err = errTask.Result;
    if (p.ExitCode > 1) Console.Error.WriteLine($"clamdscan {string.Join(' ', mode)} exit {p.ExitCode}: {err.Trim()} {outTask.Result.Trim()}");
    return $"exit {p.ExitCode}";
}

static List<(string Rel, long Size)> Generate(string dir, long size, int count, int seed)
{
    // Log-uniform sizes from 1 KiB to 48 MiB (below clamd's 64 MiB limits), scaled to the total.
    var rng = new Random(seed);
    var raw = Enumerable.Range(0, count).Select(_ => Math.Exp(rng.NextDouble() * Math.Log(48.0 * 1024))).ToArray();
    var scale = size / 1024.0 / raw.Sum();
    var sizes = raw.Select(r => (long)Math.Clamp(r * scale * 1024, 1024, 48L << 20)).ToArray();
    var list = new List<(string, long)>();
    var block = new byte[1 << 20];
    for (var i = 0; i < count; i++)
    {
        var rel = $"d{i % 16:00}/file{i:0000}.{(i % 3 == 0 ? "bin" : i % 3 == 1 ? "dat" : "txt")}";
        var full = Path.Combine(dir, rel);
        list.Add((rel, sizes[i]));
        if (File.Exists(full) && new FileInfo(full).Length == sizes[i]) continue;
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var fileRng = new Random(seed * 100_003 + i);
        using var fs = File.Create(full);
        for (long left = sizes[i]; left > 0;)
        {
            var n = (int)Math.Min(left, block.Length);
            if (i % 3 == 2) // text-like content (compressible), the rest random bytes
                for (var k = 0; k < n; k++) block[k] = (byte)"lorem ipsum dolor sit amet, consectetur adipiscing elit\n"[(k + i) % 56];
            else fileRng.NextBytes(block.AsSpan(0, n));
            fs.Write(block, 0, n);
            left -= n;
        }
    }
    return list;
}

static void ResetPeak()
{
    try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
}

static double PeakMb()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
        if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    return Process.GetCurrentProcess().PeakWorkingSet64 / 1e6;
}

internal sealed record Args(string Dir, long Size, int Files, int Parallel, int Seed, string[] Endpoints, string ClamdConf, bool NoFdPass, int Rounds, int Sessions)
{
    public static Args Parse(string[] a)
    {
        string Get(string name, string fallback)
        {
            var i = Array.IndexOf(a, name);
            return i >= 0 && i + 1 < a.Length ? a[i + 1] : fallback;
        }
        var sizeText = Get("--size", "1GB");
        var mult = sizeText.EndsWith("GB", StringComparison.Ordinal) ? 1_000_000_000L : sizeText.EndsWith("MB", StringComparison.Ordinal) ? 1_000_000L : 1L;
        var size = long.Parse(sizeText.TrimEnd('G', 'M', 'B'), CultureInfo.InvariantCulture) * mult;
        return new Args(
            Get("--dir", Path.Combine(Path.GetTempPath(), "pipeline-scan-bench")),
            size,
            int.Parse(Get("--files", "2000"), CultureInfo.InvariantCulture),
            Get("--parallel", "auto") == "auto" ? 0 : int.Parse(Get("--parallel", "auto"), CultureInfo.InvariantCulture),
            int.Parse(Get("--seed", "20260401"), CultureInfo.InvariantCulture),
            Get("--clamd", "tcp://127.0.0.1:3310").Split(','),
            Get("--clamd-conf", "/etc/clamav/clamd.conf"),
            a.Contains("--instream"),
            int.Parse(Get("--rounds", "5"), CultureInfo.InvariantCulture),
            int.Parse(Get("--sessions", "2"), CultureInfo.InvariantCulture));
    }
}
