using System.Diagnostics;
using System.Globalization;
using System.Text;
using Pipeline.Registry.Copy;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

// Promotion benchmark: copy a ~N MB two-platform image (index, few large incompressible layers, some
// small ones, an SBOM and a DSSE envelope as referrers) by digest with ImageCopier, against
// `skopeo copy --all` of the same image, in the same run. Within one registry (ours mounts) and
// between two (streamed). Own docker-registry processes only; a fresh target registry per
// cross-registry copy so neither tool finds blobs from an earlier round. One untimed warm-up round,
// then N rounds with the order rotated; medians and paired per-round ratios.
//   Promote.Bench [--mb 500] [--rounds 3] [--parallelism 4] [--work DIR] [--keep]
var inv = CultureInfo.InvariantCulture;
var opts = Args.Parse(args);
var work = Path.GetFullPath(opts.Work ?? Path.Combine(Path.GetTempPath(), "promote-bench"));
if (Directory.Exists(work)) Directory.Delete(work, true);
Directory.CreateDirectory(work);
Console.WriteLine($"promote bench: {opts.Mb} MB image, {opts.Rounds} round(s) + 1 warm-up, parallelism {opts.Parallelism}, work {work}");
Console.WriteLine($"skopeo: {Tool.Version("skopeo", "--version")}; registry: {Tool.Version("docker-registry", "--version")}; {Environment.ProcessorCount} cores, load {File.ReadAllText("/proc/loadavg").Trim()}");

// ---- seeded image: amd64 = 2 large + 3 small layers, arm64 = 1 large + 3 small; ~90% of the bytes in the large ones
var pinned = new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
var store = new BlobStore(Path.Combine(work, "blobs"));
var rng = new Random(20261130);
var total = opts.Mb * 1024L * 1024;
var sw = Stopwatch.StartNew();
async Task<Layer> LayerAsync(string name, long size)
{
    var path = Path.Combine(work, "src", name);
    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
    await using (var f = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
    {
        var buffer = new byte[1 << 20];
        for (var left = size; left > 0;)
        {
            var n = (int)Math.Min(left, buffer.Length);
            rng.NextBytes(buffer.AsSpan(0, n));
            await f.WriteAsync(buffer.AsMemory(0, n));
            left -= n;
        }
    }
    return await new LayerBuilder(store).BuildAsync([new LayerEntry(path, "/app/" + name, 0x1ED)], pinned);
}
var amdLayers = new List<Layer> { await LayerAsync("amd64/big1", total * 40 / 100), await LayerAsync("amd64/big2", total * 30 / 100) };
var armLayers = new List<Layer> { await LayerAsync("arm64/big1", total * 20 / 100) };
for (var i = 0; i < 3; i++)
{
    amdLayers.Add(await LayerAsync($"amd64/small{i}", total * 15 / 1000 + i * 4096));
    armLayers.Add(await LayerAsync($"arm64/small{i}", total * 15 / 1000 + i * 8192));
}
var amd = ImageBuilder.Build(null, amdLayers, new ImageSettings { Created = pinned, User = "10001", Platform = new Platform("amd64", "linux") });
var arm = ImageBuilder.Build(null, armLayers, new ImageSettings { Created = pinned, User = "10001", Platform = new Platform("arm64", "linux") });
var blobBytes = amd.AllLayers.Concat(arm.AllLayers).Sum(l => l.Size) + amd.ConfigBytes.Length + arm.ConfigBytes.Length;
var mb = blobBytes / 1024.0 / 1024.0;
Console.WriteLine(string.Create(inv, $"generated: {amdLayers.Count + armLayers.Count} layers, {mb:F1} MB of blobs (seeded, incompressible) in {sw.Elapsed.TotalSeconds:F1} s"));

// ---- source registry: push the image by digest, the index under a tag, an SBOM and a DSSE envelope as referrers
using var sourceRegistry = OwnRegistry.Start(Path.Combine(work, "reg-source"));
using var source = new RegistryClient(new RegistryEndpoint(sourceRegistry.BaseUri));
const string SourceRepo = "bench/delivery";
await source.PushImageAsync(SourceRepo, amd.ManifestDigest.ToString(), amd, store);
await source.PushImageAsync(SourceRepo, arm.ManifestDigest.ToString(), arm, store);
var index = new ImageIndex([
    new Descriptor(MediaTypes.OciManifest, amd.ManifestDigest, amd.ManifestBytes.Length, Platform: new Platform("amd64", "linux")),
    new Descriptor(MediaTypes.OciManifest, arm.ManifestDigest, arm.ManifestBytes.Length, Platform: new Platform("arm64", "linux")),
]);
var digest = await source.PushIndexAsync(SourceRepo, "release", index);
var sbom = Encoding.UTF8.GetBytes("{\"spdxVersion\":\"SPDX-2.3\",\"packages\":[" + string.Join(',', Enumerable.Range(0, 2000).Select(i => $"{{\"name\":\"pkg{i}\",\"versionInfo\":\"1.{i}\"}}")) + "]}");
var sbomDesc = new Descriptor("application/spdx+json", Digest.Compute(sbom), sbom.Length);
var indexDesc = new Descriptor(MediaTypes.OciIndex, digest, index.ToJsonBytes().Length);
await source.AttachArtifactAsync(SourceRepo, indexDesc, "application/spdx+json", [(sbomDesc, sbom)]);
var dsse = Encoding.UTF8.GetBytes("{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"" + Convert.ToBase64String(new byte[4096]) + "\",\"signatures\":[{\"sig\":\"MEUCIQ\"}]}");
var dsseDesc = new Descriptor("application/vnd.dsse.envelope.v1+json", Digest.Compute(dsse), dsse.Length);
await source.AttachArtifactAsync(SourceRepo, indexDesc, "application/vnd.dsse.envelope.v1+json", [(dsseDesc, dsse)]);
Console.WriteLine($"source: {sourceRegistry.Address}/{SourceRepo}@{digest} (index, 2 platforms, 2 referrers)");

// ---- modes
var peakOurs = 0.0;
var peakSkopeo = 0.0;
var notes = new Dictionary<string, string>();
var modes = new List<(string Name, Func<int, Task<double>> Run)>
{
    ("ours, same registry (mount)", async r =>
    {
        var repo = $"bench/stage-ours-{r}";
        Mem.ResetHighWaterMark();
        var t = Stopwatch.StartNew();
        var result = await ImageCopier.CopyAsync(source, SourceRepo, digest, source, repo, new ImageCopyOptions { Parallelism = opts.Parallelism }, CancellationToken.None);
        var s = t.Elapsed.TotalSeconds;
        peakOurs = Math.Max(peakOurs, Mem.HighWaterMarkMb());
        if (result.BytesUploaded != 0) throw new InvalidOperationException($"a mount uploaded {result.BytesUploaded} bytes");
        notes["ours, same registry (mount)"] = $"mounted {result.BlobsMounted} blobs, uploaded {result.BytesUploaded} bytes, referrers {result.Referrers.Count}";
        return s;
    }),
    ("skopeo, same registry", async r =>
    {
        var repo = $"bench/stage-skopeo-{r}";
        var t = Stopwatch.StartNew();
        peakSkopeo = Math.Max(peakSkopeo, Tool.Run("skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
            $"docker://{sourceRegistry.Address}/{SourceRepo}@{digest}", $"docker://{sourceRegistry.Address}/{repo}:stage"));
        var s = t.Elapsed.TotalSeconds;
        notes["skopeo, same registry"] = $"referrers at the target: {(await source.ListReferrersAsync(repo, digest)).Count}; {await SameDigestAsync(source, repo)}";
        return s;
    }),
    ("ours, two registries (streamed)", async r =>
    {
        using var targetRegistry = OwnRegistry.Start(Path.Combine(work, $"reg-ours-{r}"));
        using var target = new RegistryClient(new RegistryEndpoint(targetRegistry.BaseUri));
        Mem.ResetHighWaterMark();
        var t = Stopwatch.StartNew();
        var result = await ImageCopier.CopyAsync(source, SourceRepo, digest, target, "bench/produktion", new ImageCopyOptions { Parallelism = opts.Parallelism }, CancellationToken.None);
        var s = t.Elapsed.TotalSeconds;
        peakOurs = Math.Max(peakOurs, Mem.HighWaterMarkMb());
        var same = await SameDigestAsync(target, "bench/produktion");
        notes["ours, two registries (streamed)"] = string.Create(inv, $"uploaded {result.BlobsUploaded} blobs, {result.BytesUploaded / 1048576.0:F1} MB, referrers {result.Referrers.Count}; {same}");
        return s;
    }),
    ("skopeo, two registries", async r =>
    {
        using var targetRegistry = OwnRegistry.Start(Path.Combine(work, $"reg-skopeo-{r}"));
        using var target = new RegistryClient(new RegistryEndpoint(targetRegistry.BaseUri));
        var t = Stopwatch.StartNew();
        peakSkopeo = Math.Max(peakSkopeo, Tool.Run("skopeo", "copy", "--all", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
            $"docker://{sourceRegistry.Address}/{SourceRepo}@{digest}", $"docker://{targetRegistry.Address}/bench/produktion:stage"));
        var s = t.Elapsed.TotalSeconds;
        notes["skopeo, two registries"] = $"referrers at the target: {(await target.ListReferrersAsync("bench/produktion", digest)).Count}; {await SameDigestAsync(target, "bench/produktion")}";
        return s;
    }),
};

async Task<string> SameDigestAsync(RegistryClient client, string repo) =>
    await client.ManifestExistsAsync(repo, digest) ? "same index digest" : "INDEX DIGEST DIFFERS";

var times = modes.ToDictionary(m => m.Name, _ => new List<double>());
foreach (var (name, run) in modes)
{
    var s = await run(0);
    Console.WriteLine(string.Create(inv, $"  warm-up (not counted): {name}: {s:F2} s"));
}
for (var round = 1; round <= opts.Rounds; round++)
{
    foreach (var (name, run) in modes.Skip(round % modes.Count).Concat(modes.Take(round % modes.Count)))
    {
        var s = await run(round);
        times[name].Add(s);
        Console.WriteLine(string.Create(inv, $"  round {round}/{opts.Rounds}: {name}: {s:F2} s"));
    }
}

static double Median(List<double> xs)
{
    var s = xs.Order().ToList();
    return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
}
Console.WriteLine();
Console.WriteLine($"{"mode",-34} {"median s",9} {"MB/s",8} {"best s",8}  rounds; notes");
foreach (var (name, _) in modes)
{
    var m = Median(times[name]);
    Console.WriteLine(string.Create(inv, $"{name,-34} {m,9:F2} {mb / m,8:F1} {times[name].Min(),8:F2}  {string.Join(" ", times[name].Select(t => t.ToString("F2", inv)))}; {notes[name]}"));
}
double Ratio(string theirs, string ours) => Median(times[theirs]) / Median(times[ours]);
string Paired(string theirs, string ours) => string.Join(" ", times[theirs].Zip(times[ours], (a, b) => (a / b).ToString("F2", inv)));
var between = Ratio("skopeo, two registries", "ours, two registries (streamed)");
var within = Ratio("skopeo, same registry", "ours, same registry (mount)");
Console.WriteLine(string.Create(inv, $"two registries: skopeo / ours, median {between:F2}x (paired per round: {Paired("skopeo, two registries", "ours, two registries (streamed)")})"));
Console.WriteLine(string.Create(inv, $"same registry:  skopeo / ours, median {within:F2}x (paired per round: {Paired("skopeo, same registry", "ours, same registry (mount)")})"));
Console.WriteLine(string.Create(inv, $"peak RSS: ours {peakOurs:F0} MB (whole bench process, reset before each copy), skopeo {peakSkopeo:F0} MB"));
Console.WriteLine("ours also copies the referrers (SBOM + DSSE envelope) and checks every byte against its digest before committing a blob; skopeo copy --all copies neither referrers nor the fallback tag.");
Console.WriteLine();
Console.WriteLine(string.Create(inv, $"RESULT image={mb:F0}MB between_ratio={between:F2}x within_ratio={within:F2}x ours_between={mb / Median(times["ours, two registries (streamed)"]):F1}MB/s ours_within={Median(times["ours, same registry (mount)"]):F2}s ours_peak_rss={peakOurs:F0}MB skopeo_peak_rss={peakSkopeo:F0}MB"));
Console.WriteLine($"targets: between registries at least as fast as skopeo {(between >= 1 ? "MET" : "NOT MET")}; within one registry 0 bytes uploaded MET");
if (!opts.Keep) Directory.Delete(work, true);
return 0;

internal sealed record Args(long Mb, int Rounds, int Parallelism, string? Work, bool Keep)
{
    public static Args Parse(string[] a)
    {
        long mb = 500; var rounds = 3; var parallelism = 4; string? work = null; var keep = false;
        for (var i = 0; i < a.Length; i++)
        {
            switch (a[i])
            {
                case "--mb": mb = long.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--parallelism": parallelism = int.Parse(a[++i], CultureInfo.InvariantCulture); break;
                case "--work": work = a[++i]; break;
                case "--keep": keep = true; break;
                default: throw new ArgumentException($"unknown argument {a[i]}");
            }
        }
        return new Args(mb, rounds, parallelism, work, keep);
    }
}
