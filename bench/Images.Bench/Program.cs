using System.Diagnostics;
using System.Globalization;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

// Images benchmark: build + push an image from N MB of binaries in ~F files with our library,
// against `umoci init/new/insert` + `skopeo copy` doing the same, in the same run.
//   Images.Bench [--mb 500] [--files 1000] [--registry 127.0.0.1:5000] [--work DIR] [--keep]
//                [--chunked-upload-threshold-mb 64]   (blobs at least this large go up in resumable chunks)
var opts = Args.Parse(args);
var work = Path.GetFullPath(opts.Work ?? Path.Combine(Path.GetTempPath(), "images-bench"));
if (Directory.Exists(work)) Directory.Delete(work, true);
Directory.CreateDirectory(work);
var src = Path.Combine(work, "src");
var run = DateTime.UtcNow.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture);
Console.WriteLine($"images bench: {opts.Mb} MB in ~{opts.Files} files, registry {opts.Registry}, work {work}");

var (fileCount, totalBytes) = Generator.Generate(src, opts.Mb * 1024L * 1024, opts.Files);
var mb = totalBytes / 1024.0 / 1024.0;
Console.WriteLine($"generated {fileCount} files, {mb:F1} MB (deterministic, ~90% incompressible)");

// ---- ours
var entries = new List<LayerEntry>();
foreach (var path in Directory.EnumerateFileSystemEntries(src, "*", SearchOption.AllDirectories))
{
    var target = "/app/" + Path.GetRelativePath(src, path);
    entries.Add(Directory.Exists(path) ? new LayerEntry(null, target, 0x1ED) : new LayerEntry(path, target, 0x1ED));
}
var pinned = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
using var client = new RegistryClient(RegistryEndpoint.Parse(opts.Registry),
    new RegistryClientOptions { ChunkedUploadThreshold = opts.ChunkThresholdMb * 1024L * 1024 });
var settings = new ImageSettings { Created = pinned, User = "10001", Entrypoint = ["/app/d000/f0000"] };

// (a) build, then push (what the pipeline's build and push stages do)
var hwmBefore = Mem.HighWaterMarkMb();
Mem.ResetHighWaterMark();
var sw = Stopwatch.StartNew();
var store = new BlobStore(Path.Combine(work, "blobs"));
var layer = await new LayerBuilder(store).BuildAsync(entries, pinned);
var image = ImageBuilder.Build(null, [layer], settings);
var buildSeconds = sw.Elapsed.TotalSeconds;
var push1 = await client.PushImageAsync($"bench/ours-{run}", "v1", image, store);
var seqSeconds = sw.Elapsed.TotalSeconds;
sw.Restart();
var push2 = await client.PushImageAsync($"bench/ours-{run}", "v1", image, store);
var secondPushSeconds = sw.Elapsed.TotalSeconds;
Console.WriteLine($"ours, build then push: build {buildSeconds:F1} s + push {seqSeconds - buildSeconds:F1} s = {seqSeconds:F1} s, {mb / seqSeconds:F1} MB/s, layer {layer.Descriptor.Size / 1024.0 / 1024.0:F1} MB");
Console.WriteLine($"ours: first push uploaded {push1.BlobsUploaded} blobs; second push of the unchanged image uploaded {push2.BlobsUploaded}, skipped {push2.BlobsSkipped} ({secondPushSeconds:F2} s)");

// (b) build while pushing (RegistryClient.BuildAndPushLayerAsync), fresh store and repository
sw.Restart();
var store2 = new BlobStore(Path.Combine(work, "blobs2"));
var streamed = await client.BuildAndPushLayerAsync($"bench/ours-stream-{run}", new LayerBuilder(store2), entries, pinned);
var image2 = ImageBuilder.Build(null, [streamed], settings);
var push3 = await client.PushImageAsync($"bench/ours-stream-{run}", "v1", image2, store2);
var oursSeconds = sw.Elapsed.TotalSeconds;
var oursPeak = Mem.HighWaterMarkMb();
if (image2.ManifestDigest != image.ManifestDigest) throw new InvalidOperationException("streamed build gave another digest");
Console.WriteLine($"ours, build while pushing: {oursSeconds:F1} s, {mb / oursSeconds:F1} MB/s (layer already there at manifest push: uploaded {push3.BlobsUploaded} more blob(s), the config); same digest {image2.ManifestDigest.Hex[..12]}");
Console.WriteLine($"ours: peak RSS over both runs {oursPeak:F0} MB (process before: {hwmBefore:F0} MB)");

// ---- umoci + skopeo
var layout = Path.Combine(work, "layout");
sw.Restart();
var peaks = new List<double>
{
    Tool.Run("umoci", "init", "--layout", layout),
    Tool.Run("umoci", "new", "--image", $"{layout}:v1"),
    Tool.Run("umoci", "insert", "--image", $"{layout}:v1", src, "/app"),
};
var umociSeconds = sw.Elapsed.TotalSeconds;
peaks.Add(Tool.Run("skopeo", "copy", "--quiet", "--dest-tls-verify=false", $"oci:{layout}:v1", $"docker://{opts.Registry}/bench/umoci-{run}:v1"));
var theirSeconds = sw.Elapsed.TotalSeconds;
Console.WriteLine($"umoci+skopeo: umoci {umociSeconds:F1} s + skopeo {theirSeconds - umociSeconds:F1} s = {theirSeconds:F1} s, {mb / theirSeconds:F1} MB/s, peak RSS of the tools {peaks.Max():F0} MB");

var ratio = theirSeconds / oursSeconds;
var seqRatio = theirSeconds / seqSeconds;
Console.WriteLine();
Console.WriteLine($"RESULT input={mb:F0}MB files={fileCount} ours_streamed={mb / oursSeconds:F1}MB/s ours_sequential={mb / seqSeconds:F1}MB/s theirs={mb / theirSeconds:F1}MB/s ratio={ratio:F2}x ratio_sequential={seqRatio:F2}x ours_peak_rss={oursPeak:F0}MB second_push_uploaded={push2.BlobsUploaded}");
Console.WriteLine($"targets: ratio>=2 {(ratio >= 2 ? "MET" : "NOT MET")}; peak<150MB {(oursPeak < 150 ? "MET" : "NOT MET")}; second push uploads no blob {(push2.BlobsUploaded == 0 ? "MET" : "NOT MET")}");
if (!opts.Keep) Directory.Delete(work, true);
return 0;

internal sealed record Args(long Mb, int Files, string Registry, string? Work, bool Keep, long ChunkThresholdMb)
{
    public static Args Parse(string[] a)
    {
        long mb = 500; var files = 1000; var registry = Environment.GetEnvironmentVariable("PIPELINE_REGISTRY") ?? "127.0.0.1:5000"; string? work = null; var keep = false; long chunk = 64;
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
                default: throw new ArgumentException($"unknown argument {a[i]}");
            }
        }
        return new Args(mb, files, registry, work, keep, chunk);
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

internal static class Tool
{
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
