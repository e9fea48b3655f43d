using System.Diagnostics;
using System.Globalization;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

// Images benchmark: build + push an image from N MB of binaries in ~F files with our library,
// against `umoci init/new/insert` + `skopeo copy` doing the same (the named baseline), in the same
// run, alternating rounds (the order flips every round), medians and per-round ratios.
//   Images.Bench [--mb 500] [--files 1000] [--rounds 3] [--registry 127.0.0.1:5000] [--work DIR] [--keep]
//                [--chunked-upload-threshold-mb 1024] [--upload-parallelism 3] [--workers N]
// skopeo remembers where it pushed blobs (its blob-info cache) and mounts them from there on the
// next push of the same content to any repository, without uploading; every round here pushes the
// same layer, so each skopeo copy gets an empty cache of its own (a private mount namespace with a
// tmpfs over /var/lib/containers/cache), as a new delivery would. Our client keeps no such cache.
var opts = Args.Parse(args);
var work = Path.GetFullPath(opts.Work ?? Path.Combine(Path.GetTempPath(), "images-bench"));
if (Directory.Exists(work)) Directory.Delete(work, true);
Directory.CreateDirectory(work);
var src = Path.Combine(work, "src");
var run = DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
Console.WriteLine($"images bench: {opts.Mb} MB in ~{opts.Files} files, {opts.Rounds} alternating round(s) after a warm-up pair, registry {opts.Registry}, work {work}");
Console.WriteLine($"{Environment.ProcessorCount} cores; load at start {Load.Now()}");

var (fileCount, totalBytes) = Generator.Generate(src, opts.Mb * 1024L * 1024, opts.Files);
var mb = totalBytes / 1024.0 / 1024.0;
Console.WriteLine($"generated {fileCount} files, {mb:F1} MB (deterministic, ~90% incompressible)");

var entries = new List<LayerEntry>();
foreach (var path in Directory.EnumerateFileSystemEntries(src, "*", SearchOption.AllDirectories))
{
    var target = "/app/" + Path.GetRelativePath(src, path);
    entries.Add(Directory.Exists(path) ? new LayerEntry(null, target, 0x1ED) : new LayerEntry(path, target, 0x1ED));
}
var pinned = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
using var client = new RegistryClient(RegistryEndpoint.Parse(opts.Registry), new RegistryClientOptions
{
    ChunkedUploadThreshold = opts.ChunkThresholdMb * 1024L * 1024,
    UploadParallelism = opts.UploadParallelism,
});
var settings = new ImageSettings { Created = pinned, User = "10001", Entrypoint = ["/app/d000/f0000"] };
Digest? firstDigest = null;

// ours: build, then push (what the pipeline's build and push stages do); a fresh store and repository each round
async Task<(double Build, double Push, double Total, double Cpu)> OursAsync(int round)
{
    var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    var store = new BlobStore(Path.Combine(work, $"blobs-{round}"));
    var layer = await new LayerBuilder(store) { Workers = opts.Workers }.BuildAsync(entries, pinned);
    var image = ImageBuilder.Build(null, [layer], settings);
    var build = sw.Elapsed.TotalSeconds;
    var push = await client.PushImageAsync($"bench/ours-{run}-{round}", "v1", image, store);
    var total = sw.Elapsed.TotalSeconds;
    if (push.BlobsUploaded != 2) throw new InvalidOperationException($"expected 2 uploads (layer, config), got {push.BlobsUploaded}");
    firstDigest ??= image.ManifestDigest;
    if (image.ManifestDigest != firstDigest) throw new InvalidOperationException("the image digest changed between rounds");
    Directory.Delete(store.Root, true);
    return (build, total - build, total, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
}

// the baseline: umoci init/new/insert into a fresh OCI layout + skopeo copy with an empty blob-info cache
(double Umoci, double Skopeo, double Total, double PeakMb) Theirs(int round)
{
    var layout = Path.Combine(work, $"layout-{round}");
    var sw = Stopwatch.StartNew();
    var peaks = new List<double>
    {
        Tool.Run("umoci", "init", "--layout", layout),
        Tool.Run("umoci", "new", "--image", $"{layout}:v1"),
        Tool.Run("umoci", "insert", "--image", $"{layout}:v1", src, "/app"),
    };
    var umoci = sw.Elapsed.TotalSeconds;
    peaks.Add(Tool.RunWithEmptyBlobCache("skopeo", "copy", "--quiet", "--dest-tls-verify=false", $"oci:{layout}:v1", $"docker://{opts.Registry}/bench/umoci-{run}-{round}:v1"));
    var total = sw.Elapsed.TotalSeconds;
    Directory.Delete(layout, true);
    return (umoci, total - umoci, total, peaks.Max());
}

Mem.ResetHighWaterMark();
var w1 = await OursAsync(0);
var w2 = Theirs(0);
Console.WriteLine($"  warm-up (not counted): ours {w1.Total:F1} s (build {w1.Build:F1} + push {w1.Push:F1}); umoci+skopeo {w2.Total:F1} s (umoci {w2.Umoci:F1} + skopeo {w2.Skopeo:F1})");
var ours = new List<(double Build, double Push, double Total, double Cpu)>();
var theirs = new List<(double Umoci, double Skopeo, double Total, double PeakMb)>();
for (var k = 1; k <= opts.Rounds; k++)
{
    var load = Load.Now();
    if (k % 2 == 1) { ours.Add(await OursAsync(k)); theirs.Add(Theirs(k)); }
    else { theirs.Add(Theirs(k)); ours.Add(await OursAsync(k)); }
    var o = ours[^1];
    var t = theirs[^1];
    Console.WriteLine($"  round {k}/{opts.Rounds} (load {load}): ours {o.Total:F1} s (build {o.Build:F1} + push {o.Push:F1}, CPU {o.Cpu:F1} s); " +
                      $"umoci+skopeo {t.Total:F1} s (umoci {t.Umoci:F1} + skopeo {t.Skopeo:F1}); ours/theirs {o.Total / t.Total:F2}x");
}
var oursPeak = Mem.HighWaterMarkMb();

static double Median(IEnumerable<double> xs)
{
    var a = xs.Order().ToArray();
    return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
}
var ratios = ours.Zip(theirs, (o, t) => o.Total / t.Total).ToList();
Console.WriteLine();
Console.WriteLine($"{"",-28} {"median s",9} {"min s",7} {"max s",7}");
void Row(string name, IEnumerable<double> xs) { var a = xs.ToArray(); Console.WriteLine($"{name,-28} {Median(a),9:F2} {a.Min(),7:F2} {a.Max(),7:F2}"); }
Row("ours build", ours.Select(o => o.Build));
Row("ours push", ours.Select(o => o.Push));
Row("ours build + push", ours.Select(o => o.Total));
Row("umoci (init/new/insert)", theirs.Select(t => t.Umoci));
Row("skopeo copy (empty cache)", theirs.Select(t => t.Skopeo));
Row("umoci + skopeo", theirs.Select(t => t.Total));
Console.WriteLine($"per-round ratio ours/umoci+skopeo: median {Median(ratios):F2}x, min {ratios.Min():F2}x, max {ratios.Max():F2}x ({string.Join(' ', ratios.Select(r => r.ToString("F2", CultureInfo.InvariantCulture)))})");
Console.WriteLine($"ours: peak RSS {oursPeak:F0} MB; the tools' peak RSS {theirs.Max(t => t.PeakMb):F0} MB; load at end {Load.Now()}");
Console.WriteLine();
Console.WriteLine($"RESULT input={mb:F0}MB files={fileCount} rounds={opts.Rounds} ours={Median(ours.Select(o => o.Total)):F2}s theirs={Median(theirs.Select(t => t.Total)):F2}s " +
                  $"ratio={Median(ratios):F2}x (ours/theirs, lower is better) ours_peak_rss={oursPeak:F0}MB digest={firstDigest}");
Console.WriteLine($"target: ours no slower than umoci+skopeo (ratio <= 1.00): {(Median(ratios) <= 1.0 ? "MET" : "NOT MET")}");
if (!opts.Keep) Directory.Delete(work, true);
return 0;

internal sealed record Args(long Mb, int Files, string Registry, string? Work, bool Keep, long ChunkThresholdMb, int Rounds, int UploadParallelism, int? Workers)
{
    public static Args Parse(string[] a)
    {
        long mb = 500; var files = 1000; var registry = Environment.GetEnvironmentVariable("PIPELINE_REGISTRY") ?? "127.0.0.1:5000"; string? work = null; var keep = false; long chunk = 1024;
        var rounds = 3; var uploads = 3; int? workers = null;
        for (var i = 0; i < a.Length; i++)
        {
            switch (a[i])
            {
                case "--mb": mb = long.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--files": files = int.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--registry": registry = a[++i]; break;
                case "--work": work = a[++i]; break;
                case "--keep": keep = true; break;
                case "--chunked-upload-threshold-mb": chunk = long.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--upload-parallelism": uploads = int.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--workers": workers = int.Parse(a[++i], CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown argument {a[i]}");
            }
        }
        return new Args(mb, files, registry, work, keep, chunk, rounds, uploads, workers);
    }
}

internal static class Generator
{
    /// <summary>Mixed sizes (many small, some medium, a few large), seeded PRNG content; every 10th file is text (compressible).</summary>
    public static (int Count, long Bytes) Generate(string root, long total, int files)
    {
        var rng = new Random(20250101);
        var weights = new double[files];
        for (var i = 0; i < files; i++)
        {
            var r = rng.NextDouble();
            weights[i] = r < 0.80 ? 1 + rng.NextDouble() * 20 : r < 0.97 ? 50 + rng.NextDouble() * 200 : 1000 + rng.NextDouble() * 2000;
        }
        var sum = weights.Sum();
        var buffer = new byte[1 << 20];
        long written = 0;
        for (var i = 0; i < files; i++)
        {
            var size = (long)(weights[i] / sum * total);
            var dir = Path.Combine(root, $"d{i / 100:D3}");
            Directory.CreateDirectory(dir);
            using var f = new FileStream(Path.Combine(dir, $"f{i:D4}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            var text = i % 10 == 0;
            for (long left = size; left > 0;)
            {
                var n = (int)Math.Min(left, buffer.Length);
                if (text) for (var k = 0; k < n; k++) buffer[k] = (byte)"lorem ipsum dolor sit amet, consectetur\n"[(int)((written + k) % 40)];
                else rng.NextBytes(buffer.AsSpan(0, n));
                f.Write(buffer, 0, n);
                left -= n;
                written += n;
            }
        }
        return (files, written);
    }
}

internal static class Mem
{
    /// <summary>VmHWM (peak resident set) of this process in MB.</summary>
    public static double HighWaterMarkMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    /// <summary>Resets VmHWM (Linux: write 5 to /proc/self/clear_refs).</summary>
    public static void ResetHighWaterMark()
    {
        GC.Collect();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static class Load
{
    /// <summary>The 1/5/15-minute load averages (/proc/loadavg).</summary>
    public static string Now() => string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
}

internal static class Tool
{
    /// <summary>
    /// As <see cref="Run"/>, in a private mount namespace with an empty tmpfs over skopeo's blob-info
    /// cache (root's /var/lib/containers/cache), so nothing learnt by earlier pushes is reused.
    /// </summary>
    public static double RunWithEmptyBlobCache(string file, params string[] args)
    {
        const string cache = "/var/lib/containers/cache";
        Directory.CreateDirectory(cache);
        var script = $"mount -t tmpfs tmpfs {cache} && exec \"$0\" \"$@\"";
        return Run("unshare", ["--mount", "--propagation", "private", "sh", "-c", script, file, .. args]);
    }

    /// <summary>Runs a tool under /usr/bin/time -f %M; returns its peak RSS in MB.</summary>
    public static double Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/time") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-f");
        psi.ArgumentList.Add("MAXRSS=%M");
        psi.ArgumentList.Add(file);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        _ = stdout.Result;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {stderr}");
        var line = stderr.Split('\n').Last(l => l.StartsWith("MAXRSS=", StringComparison.Ordinal));
        return long.Parse(line[7..], CultureInfo.InvariantCulture) / 1024.0;
    }
}
