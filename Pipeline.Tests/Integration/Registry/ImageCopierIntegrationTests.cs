using System.Text;
using System.Text.Json;
using Pipeline.Registry;
using Pipeline.Registry.Copy;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// <see cref="ImageCopier"/> against real docker-registry processes: within the shared registry
/// (mounts), into a throw-away second registry (streamed), a registry stopped in the middle, a
/// corrupt blob on the source's disk. Copies are checked with skopeo, an independent client.
/// </summary>
[Category("Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class ImageCopierIntegrationTests
{
    private static readonly DateTimeOffset Pinned = new(2024, 6, 1, 8, 30, 0, TimeSpan.Zero);
    private const string SbomType = "application/spdx+json";
    private const string DsseType = "application/vnd.dsse.envelope.v1+json";
    private static readonly RegistryClientOptions FastFail = new() { MaxAttempts = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(5) };

    private ThrowAwayRegistry? _second;
    private string _plain = "";
    private string _work = "";

    [OneTimeSetUp]
    public void StartSecondRegistry()
    {
        _plain = TestServices.Require("PIPELINE_REGISTRY");
        _second = ThrowAwayRegistry.Start(auth: false, tls: false);
    }

    [OneTimeTearDown]
    public void StopSecondRegistry() => _second?.Dispose();

    [SetUp]
    public void Setup()
    {
        _work = Path.Combine(Path.GetTempPath(), "reg-copy-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_work);
    }

    [TearDown]
    public void Cleanup()
    {
        if (Directory.Exists(_work)) Directory.Delete(_work, true);
    }

    private static string Repo(string what) => $"pipeline-tests/copy-{what}-" + Guid.NewGuid().ToString("N")[..10];

    /// <summary>What was pushed to the source: the index, its blobs and its three referrers.</summary>
    private sealed record SourceImage(Digest Index, BuiltImage Amd64, BuiltImage Arm64, IReadOnlyList<Descriptor> Blobs, Digest Sbom, Digest AmdDsse, Digest SbomDsse);

    private async Task<BuiltImage> ImageAsync(BlobStore store, int randomBytes, int seed, string arch)
    {
        var big = Path.Combine(_work, $"big-{arch}");
        var bytes = new byte[randomBytes];
        new Random(seed).NextBytes(bytes);
        await File.WriteAllBytesAsync(big, bytes);
        var small = Path.Combine(_work, "small.txt");
        await File.WriteAllTextAsync(small, "shared small layer\n");
        var builder = new LayerBuilder(store);
        var bigLayer = await builder.BuildAsync([new LayerEntry(big, "/app/data.bin", Convert.ToInt32("644", 8))], Pinned);
        var smallLayer = await builder.BuildAsync([new LayerEntry(small, "/etc/motd", Convert.ToInt32("644", 8))], Pinned);
        return ImageBuilder.Build(null, [smallLayer, bigLayer], new ImageSettings { Created = Pinned, User = "1000", Platform = new Platform(arch, "linux") });
    }

    /// <summary>
    /// A two-platform index (3 MiB and 2 MiB incompressible layers, a small layer shared by both), an SBOM
    /// attached to the index, a DSSE envelope attached to the amd64 manifest and one attached to the SBOM.
    /// </summary>
    private async Task<SourceImage> PushSourceAsync(RegistryClient client, string repo)
    {
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var amd = await ImageAsync(store, 3 << 20, 1, "amd64");
        var arm = await ImageAsync(store, 2 << 20, 2, "arm64");
        await client.PushImageAsync(repo, amd.ManifestDigest.ToString(), amd, store);
        await client.PushImageAsync(repo, arm.ManifestDigest.ToString(), arm, store);
        var index = new ImageIndex([
            new Descriptor(MediaTypes.OciManifest, amd.ManifestDigest, amd.ManifestBytes.Length, Platform: new Platform("amd64", "linux")),
            new Descriptor(MediaTypes.OciManifest, arm.ManifestDigest, arm.ManifestBytes.Length, Platform: new Platform("arm64", "linux")),
        ]);
        var indexBytes = index.ToJsonBytes();
        var indexDigest = await client.PushIndexAsync(repo, "build", index);
        var sbom = Encoding.UTF8.GetBytes("{\"spdxVersion\":\"SPDX-2.3\",\"name\":\"copy-test\"}");
        var sbomDesc = new Descriptor(SbomType, Digest.Compute(sbom), sbom.Length);
        var sbomArt = await client.AttachArtifactAsync(repo, new Descriptor(MediaTypes.OciIndex, indexDigest, indexBytes.Length), SbomType, [(sbomDesc, sbom)]);
        var env1 = Encoding.UTF8.GetBytes("{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"e30=\",\"signatures\":[{\"sig\":\"AAAA\"}]}");
        var env1Desc = new Descriptor(DsseType, Digest.Compute(env1), env1.Length);
        var amdDsse = await client.AttachArtifactAsync(repo, amd.ManifestDescriptor, DsseType, [(env1Desc, env1)]);
        var env2 = Encoding.UTF8.GetBytes("{\"payloadType\":\"application/vnd.in-toto+json\",\"payload\":\"e319\",\"signatures\":[{\"sig\":\"BBBB\"}]}");
        var env2Desc = new Descriptor(DsseType, Digest.Compute(env2), env2.Length);
        var sbomDsse = await client.AttachArtifactAsync(repo, sbomArt.Manifest, DsseType, [(env2Desc, env2)]);
        var empty = new Descriptor(MediaTypes.OciEmpty, Digest.Compute(RegistryClient.EmptyConfigBytes), RegistryClient.EmptyConfigBytes.Length);
        var blobs = amd.AllLayers.Concat(arm.AllLayers).Append(amd.ConfigDescriptor).Append(arm.ConfigDescriptor)
            .Append(sbomDesc).Append(env1Desc).Append(env2Desc).Append(empty).DistinctBy(d => d.Digest).ToArray();
        return new SourceImage(indexDigest, amd, arm, blobs, sbomArt.ManifestDigest, amdDsse.ManifestDigest, sbomDsse.ManifestDigest);
    }

    /// <summary>The digest of the bytes skopeo reads for a reference.</summary>
    private string SkopeoRaw(string reference, out Digest digest)
    {
        var (exit, stdout, stderr) = Shell.RunBytes("skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://" + reference], _work, null, new Dictionary<string, string>());
        Assert.That(exit, Is.EqualTo(0), $"skopeo inspect --raw {reference}: {stderr}");
        digest = Digest.Compute(stdout);
        return Encoding.UTF8.GetString(stdout);
    }

    /// <summary>skopeo sees the same bytes under the same digests: index, both platform manifests, the three referrers.</summary>
    private void AssertSkopeoSeesTheCopy(string address, string repo, SourceImage src)
    {
        foreach (var d in new[] { src.Index, src.Amd64.ManifestDigest, src.Arm64.ManifestDigest, src.Sbom, src.AmdDsse, src.SbomDsse })
        {
            SkopeoRaw($"{address}/{repo}@{d}", out var seen);
            Assert.That(seen, Is.EqualTo(d), $"skopeo reads {d} byte for byte from {address}/{repo}");
        }
        using var sbom = JsonDocument.Parse(SkopeoRaw($"{address}/{repo}@{src.Sbom}", out _));
        Assert.That(sbom.RootElement.GetProperty("subject").GetProperty("digest").GetString(), Is.EqualTo(src.Index.ToString()), "the SBOM still points at the index");
        using var fallback = JsonDocument.Parse(SkopeoRaw($"{address}/{repo}:{RegistryClient.ReferrersTag(src.Index)}", out _));
        Assert.That(fallback.RootElement.GetProperty("manifests").EnumerateArray().Select(m => m.GetProperty("digest").GetString()),
            Is.EquivalentTo(new[] { src.Sbom.ToString() }), "the target's referrers fallback index lists the SBOM");
    }

    private static async Task AssertReferrersAsync(RegistryClient client, string repo, SourceImage src)
    {
        Assert.That((await client.ListReferrersAsync(repo, src.Index)).Select(r => r.Digest), Is.EqualTo(new[] { src.Sbom }));
        Assert.That((await client.ListReferrersAsync(repo, src.Amd64.ManifestDigest, DsseType)).Select(r => r.Digest), Is.EqualTo(new[] { src.AmdDsse }));
        Assert.That((await client.ListReferrersAsync(repo, src.Sbom, DsseType)).Select(r => r.Digest), Is.EqualTo(new[] { src.SbomDsse }), "referrers of referrers come along");
    }

    [Test]
    public async Task Within_one_registry_every_blob_is_mounted_and_no_byte_is_uploaded()
    {
        var (from, to) = (Repo("src"), Repo("stage"));
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain));
        var src = await PushSourceAsync(client, from);

        var result = await ImageCopier.CopyAsync(client, from, src.Index, client, to, null, CancellationToken.None);

        Assert.That(result.Digest, Is.EqualTo(src.Index));
        Assert.That(result.MediaType, Is.EqualTo(MediaTypes.OciIndex));
        Assert.That(result.BytesUploaded, Is.Zero, "a promotion inside one registry moves no blob bytes");
        Assert.That(result.BlobsUploaded, Is.Zero);
        Assert.That(result.BlobsMounted, Is.EqualTo(src.Blobs.Count), "each distinct blob mounted once");
        Assert.That(result.Manifests, Is.EqualTo(6), "index, two platform manifests, three referrers");
        Assert.That(result.Referrers, Is.EquivalentTo(new[] { src.Sbom, src.AmdDsse, src.SbomDsse }));
        await AssertReferrersAsync(client, to, src);
        AssertSkopeoSeesTheCopy(_plain, to, src);

        var again = await ImageCopier.CopyAsync(client, from, src.Index, client, to, null, CancellationToken.None);
        Assert.That((again.BlobsSkipped, again.BlobsMounted, again.BytesUploaded), Is.EqualTo((src.Blobs.Count, 0, 0L)), "a second promotion finds everything there");
    }

    [Test]
    public async Task Between_registries_blobs_are_streamed_verified_and_skopeo_copies_the_result()
    {
        var (from, to) = (Repo("src"), Repo("prod"));
        using var source = new RegistryClient(RegistryEndpoint.Parse(_plain));
        using var target = new RegistryClient(new RegistryEndpoint(_second!.BaseUri));
        var src = await PushSourceAsync(source, from);
        var phases = new List<string>();

        var result = await ImageCopier.CopyAsync(source, from, src.Index, target, to,
            new ImageCopyOptions { Progress = new SyncProgress(p => { lock (phases) phases.Add(p.Phase); }) }, CancellationToken.None);

        Assert.That(result.BlobsUploaded, Is.EqualTo(src.Blobs.Count));
        Assert.That(result.BytesUploaded, Is.EqualTo(src.Blobs.Sum(b => b.Size)));
        Assert.That(result.BlobsMounted, Is.Zero, "no mount across registries");
        Assert.That(phases.Count(p => p == "blob"), Is.EqualTo(src.Blobs.Count));
        Assert.That(phases[^1], Is.EqualTo("done"));
        Assert.That(await target.GetManifestAsync(to, "build").ContinueWith(t => t.Exception?.InnerException is RegistryException { StatusCode: 404 }),
            Is.True, "the source tag is not copied: copies are by digest");
        await AssertReferrersAsync(target, to, src);
        AssertSkopeoSeesTheCopy(_second.Address, to, src);

        await ImageCopier.TagAsync(target, to, src.Index, "produktion", CancellationToken.None);
        SkopeoRaw($"{_second.Address}/{to}:produktion", out var tagged);
        Assert.That(tagged, Is.EqualTo(src.Index));
        var oci = Path.Combine(_work, "oci");
        Shell.Run("skopeo", ["copy", "--all", "--src-tls-verify=false", $"docker://{_second.Address}/{to}:produktion", $"oci:{oci}:p"])
            .EnsureSuccess("skopeo copy --all (verifies every blob digest)");
        using var layout = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(oci, "index.json")));
        Assert.That(layout.RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString(), Is.EqualTo(src.Index.ToString()));

        var again = await ImageCopier.CopyAsync(source, from, src.Index, target, to, null, CancellationToken.None);
        Assert.That((again.BlobsSkipped, again.BytesUploaded), Is.EqualTo((src.Blobs.Count, 0L)));
    }

    [Test]
    public async Task A_target_that_stops_mid_copy_leaves_no_tag_and_a_retry_finishes()
    {
        var (from, to) = (Repo("src"), Repo("abnahme"));
        using var flaky = ThrowAwayRegistry.Start(auth: false, tls: false);
        using var source = new RegistryClient(RegistryEndpoint.Parse(_plain));
        using var target = new RegistryClient(new RegistryEndpoint(flaky.BaseUri), FastFail);
        var src = await PushSourceAsync(source, from);
        var firstBlob = 0;
        var stopAfterFirstBlob = new SyncProgress(p =>
        {
            if (p.Phase == "blob" && Interlocked.Increment(ref firstBlob) == 1) flaky.Stop();
        });

        async Task PromoteAsync(ImageCopyOptions options)
        {
            await ImageCopier.CopyAsync(source, from, src.Index, target, to, options, CancellationToken.None);
            await ImageCopier.TagAsync(target, to, src.Index, "abnahme", CancellationToken.None);
        }

        var ex = await Assert.ThrowsAsync<RegistryException>(() => PromoteAsync(new ImageCopyOptions { Parallelism = 1, Progress = stopAfterFirstBlob }));
        Assert.That(ex!.Code, Is.EqualTo("REG-NET-001"), ex.Message);
        Assert.That(ex.IsTransient, Is.True, "our registry being down is an outage, not a rejection");

        flaky.Restart();
        Assert.That(await target.ManifestExistsAsync(to, src.Index), Is.False, "no index was pushed");
        var tag = await Assert.ThrowsAsync<RegistryException>(() => target.GetManifestAsync(to, "abnahme"));
        Assert.That(tag!.StatusCode, Is.EqualTo(404), "no tag was moved");

        var retry = await ImageCopier.CopyAsync(source, from, src.Index, target, to, new ImageCopyOptions { Parallelism = 1 }, CancellationToken.None);
        Assert.That(retry.BlobsSkipped, Is.EqualTo(1), "the blob committed before the outage is not sent again");
        Assert.That(retry.BlobsUploaded, Is.EqualTo(src.Blobs.Count - 1));
        await ImageCopier.TagAsync(target, to, src.Index, "abnahme", CancellationToken.None);
        SkopeoRaw($"{flaky.Address}/{to}:abnahme", out var tagged);
        Assert.That(tagged, Is.EqualTo(src.Index));
    }

    [Test]
    public async Task A_source_blob_whose_bytes_do_not_match_its_digest_is_refused_and_nothing_is_committed()
    {
        var (from, to) = (Repo("src"), Repo("prod"));
        using var corrupt = ThrowAwayRegistry.Start(auth: false, tls: false);
        using var source = new RegistryClient(new RegistryEndpoint(corrupt.BaseUri));
        using var target = new RegistryClient(RegistryEndpoint.Parse(_plain));
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var image = await ImageAsync(store, 1 << 20, 3, "amd64");
        await source.PushImageAsync(from, "v1", image, store);
        var layer = image.AllLayers.MaxBy(l => l.Size)!;
        var path = corrupt.BlobDataPath(layer.Digest.Hex);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[bytes.Length / 2] ^= 0x5a;
        await File.WriteAllBytesAsync(path, bytes);

        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.CopyAsync(source, from, image.ManifestDigest, target, to, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-001"), ex.Message);
        Assert.That(ex.IsTransient, Is.False, "corrupt content is not retried");
        Assert.That(ex.Message, Does.Contain(layer.Digest.ToString()).And.Contain("corrupt"));
        Assert.That(await target.BlobExistsAsync(to, layer.Digest), Is.False, "the corrupt bytes were never committed");
        Assert.That(await target.ManifestExistsAsync(to, image.ManifestDigest), Is.False);
    }

    [Test]
    public async Task A_child_manifest_missing_in_the_source_is_refused_before_anything_is_written()
    {
        var (from, to) = (Repo("src"), Repo("stage"));
        using var source = new RegistryClient(RegistryEndpoint.Parse(_plain));
        using var target = new RegistryClient(new RegistryEndpoint(_second!.BaseUri));
        var src = await PushSourceAsync(source, from);
        using (var http = new HttpClient())
        {
            using var deleted = await http.DeleteAsync($"http://{_plain}/v2/{from}/manifests/{src.Arm64.ManifestDigest}");
            Assert.That((int)deleted.StatusCode, Is.EqualTo(202), "delete is enabled on the shared registry");
        }

        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.CopyAsync(source, from, src.Index, target, to, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-002"), ex.Message);
        Assert.That(ex.Message, Does.Contain(src.Arm64.ManifestDigest.ToString()).And.Contain("Child manifest"));
        Assert.That(ex.IsTransient, Is.False);
        Assert.That(await target.BlobExistsAsync(to, src.Amd64.ConfigDescriptor.Digest), Is.False, "the source graph is checked before the first write");
    }

    [Test]
    public async Task An_index_entry_of_an_unknown_media_type_is_refused_with_its_code()
    {
        var (from, to) = (Repo("src"), Repo("stage"));
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain));
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var image = await ImageAsync(store, 4096, 4, "amd64");
        await client.PushImageAsync(from, image.ManifestDigest.ToString(), image, store);
        var odd = new ImageIndex([new Descriptor("application/vnd.example.unknown+json", image.ManifestDigest, image.ManifestBytes.Length)]);
        var indexDigest = await client.PushIndexAsync(from, "odd", odd);

        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.CopyAsync(client, from, indexDigest, client, to, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-003"), ex.Message);
        Assert.That(ex.Message, Does.Contain("application/vnd.example.unknown+json"));
        Assert.That(await client.ManifestExistsAsync(to, image.ManifestDigest), Is.False);
    }

    [Test]
    public async Task A_listed_referrer_whose_subject_is_another_image_is_refused()
    {
        var (from, to) = (Repo("src"), Repo("stage"));
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain));
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var image = await ImageAsync(store, 4096, 5, "amd64");
        var other = await ImageAsync(store, 4096, 6, "arm64");
        await client.PushImageAsync(from, "v1", image, store);
        await client.PushImageAsync(from, "v2", other, store);
        var sbom = Encoding.UTF8.GetBytes("{\"spdxVersion\":\"SPDX-2.3\"}");
        var attached = await client.AttachArtifactAsync(from, other.ManifestDescriptor, SbomType, [(new Descriptor(SbomType, Digest.Compute(sbom), sbom.Length), sbom)]);
        // A hostile source lists the other image's SBOM as a referrer of ours (the fallback tag is just a tag).
        await client.PushManifestAsync(from, RegistryClient.ReferrersTag(image.ManifestDigest), new ImageIndex([attached.Manifest]).ToJsonBytes(), MediaTypes.OciIndex);

        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.CopyAsync(client, from, image.ManifestDigest, client, to, null, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-004"), ex.Message);
        Assert.That(ex.Message, Does.Contain(attached.ManifestDigest.ToString()).And.Contain(other.ManifestDigest.ToString()));
        var without = await ImageCopier.CopyAsync(client, from, image.ManifestDigest, client, to, new ImageCopyOptions { IncludeReferrers = false }, CancellationToken.None);
        Assert.That(without.Referrers, Is.Empty);
        Assert.That(without.Manifests, Is.EqualTo(1));
    }

    [Test]
    public async Task Tagging_a_digest_that_was_not_copied_is_refused()
    {
        var repo = Repo("stage");
        using var target = new RegistryClient(RegistryEndpoint.Parse(_plain));
        var missing = Digest.Compute(Encoding.UTF8.GetBytes("never pushed " + repo));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.TagAsync(target, repo, missing, "produktion", CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-005"));
        Assert.That(ex.Message, Does.Contain(missing.ToString()).And.Contain("copy it first"));
    }

    /// <summary>IProgress that runs the callback on the reporting thread (Progress&lt;T&gt; posts it later).</summary>
    private sealed class SyncProgress(Action<ImageCopyProgress> report) : IProgress<ImageCopyProgress>
    {
        public void Report(ImageCopyProgress value) => report(value);
    }
}
