using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Pipeline.Registry;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// Pushes an image built by our own code to the real registry and checks it with independent
/// tools: skopeo (raw manifest, config, copy to an OCI layout) and umoci (unpack the file system).
/// </summary>
[Category("Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class RegistryPushIntegrationTests
{
    private static readonly DateTimeOffset Pinned = new(2024, 6, 1, 8, 30, 0, TimeSpan.Zero);
    private string _work = "";
    private string _registry = "";
    private string _repo = "";

    [SetUp]
    public void Setup()
    {
        _registry = TestServices.Require("PIPELINE_REGISTRY");
        _work = Path.Combine(Path.GetTempPath(), "reg-it-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_work);
        _repo = "pipeline-tests/registry-" + Guid.NewGuid().ToString("N")[..12];
    }

    [TearDown]
    public void Cleanup()
    {
        if (Directory.Exists(_work)) Directory.Delete(_work, true);
    }

    private RegistryClient Client() => new(RegistryEndpoint.Parse(_registry));

    private static (int Exit, string Out, string Err) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    private static string MustRun(string file, params string[] args)
    {
        var (exit, stdout, stderr) = Run(file, args);
        Assert.That(exit, Is.Zero, $"{file} {string.Join(' ', args)} failed: {stderr}");
        return stdout;
    }

    private async Task<(BuiltImage Image, BlobStore Store)> BuildSampleAsync()
    {
        var src = Path.Combine(_work, "src");
        Directory.CreateDirectory(src);
        await File.WriteAllTextAsync(Path.Combine(src, "hello"), "#!/bin/sh\necho hello from the pipeline\n");
        await File.WriteAllTextAsync(Path.Combine(src, "config.txt"), "mode=production\n");
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var layer = await new LayerBuilder(store).BuildAsync(
        [
            new LayerEntry(Path.Combine(src, "hello"), "/app/bin/hello", Convert.ToInt32("755", 8), 1000, 1000),
            new LayerEntry(Path.Combine(src, "config.txt"), "/app/etc/config.txt", Convert.ToInt32("640", 8), 0, 1000),
        ], Pinned);
        var image = ImageBuilder.Build(null, [layer], new ImageSettings
        {
            Entrypoint = ["/app/bin/hello"],
            Cmd = ["--verbose"],
            User = "1000:1000",
            WorkingDir = "/app",
            Env = new Dictionary<string, string> { ["APP_MODE"] = "test" },
            Labels = new Dictionary<string, string> { ["org.opencontainers.image.title"] = "registry-it", ["delivery"] = "v1.0.0" },
            Created = Pinned,
            HistoryComment = "integration test layer",
        });
        return (image, store);
    }

    [Test]
    public async Task Pushed_image_is_what_skopeo_and_umoci_see()
    {
        var (image, store) = await BuildSampleAsync();
        using var client = Client();
        await client.PingAsync();

        var first = await client.PushImageAsync(_repo, "v1", image, store);
        Assert.That(first.ManifestDigest, Is.EqualTo(image.ManifestDigest));
        Assert.That(first.BlobsUploaded, Is.EqualTo(2), "one layer and the config");

        var raw = MustRun("skopeo", "inspect", "--tls-verify=false", "--raw", $"docker://{_registry}/{_repo}:v1");
        var rawBytes = Encoding.UTF8.GetBytes(raw.TrimEnd('\n'));
        Assert.That(Digest.Compute(rawBytes), Is.EqualTo(image.ManifestDigest), "skopeo's raw manifest hashes to our digest");
        Assert.That(rawBytes, Is.EqualTo(image.ManifestBytes));

        using (var config = JsonDocument.Parse(MustRun("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{_registry}/{_repo}:v1")))
        {
            var c = config.RootElement.GetProperty("config");
            Assert.That(c.GetProperty("User").GetString(), Is.EqualTo("1000:1000"));
            Assert.That(c.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "/app/bin/hello" }));
            Assert.That(c.GetProperty("Cmd").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "--verbose" }));
            Assert.That(c.GetProperty("Labels").GetProperty("delivery").GetString(), Is.EqualTo("v1.0.0"));
            Assert.That(c.GetProperty("Labels").GetProperty("org.opencontainers.image.title").GetString(), Is.EqualTo("registry-it"));
            Assert.That(config.RootElement.GetProperty("rootfs").GetProperty("diff_ids")[0].GetString(), Is.EqualTo(image.NewLayers[0].DiffId.ToString()));
        }

        var layout = Path.Combine(_work, "layout");
        MustRun("skopeo", "copy", "--src-tls-verify=false", $"docker://{_registry}/{_repo}:v1", $"oci:{layout}:v1");
        if (Environment.UserName != "root") throw TestServices.Unavailable("umoci unpack needs root to keep owners; run the suite as root (as CI does)");
        var bundle = Path.Combine(_work, "bundle");
        MustRun("umoci", "unpack", "--image", $"{layout}:v1", bundle);
        var hello = Path.Combine(bundle, "rootfs", "app", "bin", "hello");
        Assert.That(await File.ReadAllTextAsync(hello), Is.EqualTo("#!/bin/sh\necho hello from the pipeline\n"));
        Assert.That(MustRun("stat", "-c", "%a %u:%g %Y", hello).Trim(), Is.EqualTo($"755 1000:1000 {Pinned.ToUnixTimeSeconds()}"));
        var cfg = Path.Combine(bundle, "rootfs", "app", "etc", "config.txt");
        Assert.That(await File.ReadAllTextAsync(cfg), Is.EqualTo("mode=production\n"));
        Assert.That(MustRun("stat", "-c", "%a %u:%g", cfg).Trim(), Is.EqualTo("640 0:1000"));
        Assert.That(MustRun("stat", "-c", "%a %u:%g", Path.Combine(bundle, "rootfs", "app")).Trim(), Is.EqualTo("755 0:0"));

        var second = await client.PushImageAsync(_repo, "v1", image, store);
        Assert.That(second.BlobsUploaded, Is.Zero, "the second push uploads no blob");
        Assert.That(second.BlobsSkipped, Is.EqualTo(2));
        Assert.That(second.ManifestDigest, Is.EqualTo(first.ManifestDigest));
    }

    [Test]
    public async Task Manifest_and_blobs_read_back_verified()
    {
        var (image, store) = await BuildSampleAsync();
        using var client = Client();
        await client.PushImageAsync(_repo, "read", image, store);

        var byTag = await client.GetManifestAsync(_repo, "read");
        Assert.That(byTag.Bytes, Is.EqualTo(image.ManifestBytes));
        Assert.That(byTag.MediaType, Is.EqualTo(MediaTypes.OciManifest));
        Assert.That(byTag.Digest, Is.EqualTo(image.ManifestDigest));
        var byDigest = await client.GetManifestAsync(_repo, image.ManifestDigest.ToString());
        Assert.That(byDigest.Bytes, Is.EqualTo(image.ManifestBytes));

        var config = new MemoryStream();
        await client.GetBlobAsync(_repo, image.ConfigDigest, config, image.ConfigBytes.Length);
        Assert.That(config.ToArray(), Is.EqualTo(image.ConfigBytes));

        var layer = new MemoryStream();
        var size = await client.GetBlobAsync(_repo, image.NewLayers[0].Descriptor.Digest, layer);
        Assert.That(size, Is.EqualTo(image.NewLayers[0].Descriptor.Size));

        var tooSmall = await Assert.ThrowsAsync<RegistryException>(() => client.GetBlobAsync(_repo, image.NewLayers[0].Descriptor.Digest, new MemoryStream(), maxBytes: 10));
        Assert.That(tooSmall!.Code, Is.EqualTo("REG-BLOB-003"));
    }

    [Test]
    public async Task Manifest_referencing_a_missing_blob_is_rejected_with_the_registry_code()
    {
        var missing = new Descriptor(MediaTypes.OciLayerTarGzip, Digest.Compute(Encoding.UTF8.GetBytes("never uploaded " + Guid.NewGuid())), 123);
        var image = ImageBuilder.Build(null, [new Layer(missing, Digest.Compute("x"u8), "/nonexistent")], new ImageSettings { Created = Pinned });
        using var client = Client();
        // Upload the config so that only the layer is missing.
        await client.PushBlobAsync(_repo, image.ConfigDescriptor, () => new MemoryStream(image.ConfigBytes));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PushManifestAsync(_repo, "broken", image.ManifestBytes, MediaTypes.OciManifest));
        Assert.That(ex!.Code, Is.EqualTo("REG-MANIFEST-002"));
        Assert.That(ex.RegistryCode, Is.EqualTo("MANIFEST_BLOB_UNKNOWN"));
        Assert.That(ex.StatusCode, Is.EqualTo(400));
        Assert.That(ex.IsTransient, Is.False);
        Assert.That(ex.Message, Does.Contain("HTTP 400 (MANIFEST_BLOB_UNKNOWN"));
        Assert.That(ex.Message, Does.Contain($"/v2/{_repo}/manifests/broken"));

        var push = await Assert.ThrowsAsync<RegistryException>(() => client.PushImageAsync(_repo, "broken", image, new BlobStore(Path.Combine(_work, "empty"))));
        Assert.That(push!.Code, Is.EqualTo("REG-PUSH-002"));
        Assert.That(push.Message, Does.Contain($"Layer {missing.Digest} is neither in the registry"));
    }

    [Test]
    public async Task Unknown_manifest_is_a_not_found_error()
    {
        using var client = Client();
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync(_repo, "does-not-exist"));
        Assert.That(ex!.StatusCode, Is.EqualTo(404));
        Assert.That(ex.RegistryCode, Is.AnyOf("MANIFEST_UNKNOWN", "NAME_UNKNOWN"));
        Assert.That(ex.Code, Is.EqualTo("REG-MANIFEST-004"));
        Assert.That(await client.BlobExistsAsync(_repo, Digest.Compute("nothing"u8)), Is.False);
    }

    [Test]
    public async Task Base_built_by_our_code_can_be_extended_and_its_layers_mounted()
    {
        var rootfs = Path.Combine(_work, "rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "os-release"), "ID=pipeline-scratch\n");
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var baseImage = await ScratchBaseBuilder.BuildAsync(rootfs, store, new ImageSettings { Created = Pinned, Env = new Dictionary<string, string> { ["PATH"] = "/bin" } }, Pinned);
        using var client = Client();
        var baseRepo = _repo + "-base";
        await client.PushImageAsync(baseRepo, "1", baseImage, store);

        var pulled = await client.GetManifestAsync(baseRepo, "1");
        var manifest = ImageManifest.Parse(pulled.Bytes, pulled.MediaType);
        var configBytes = new MemoryStream();
        await client.GetBlobAsync(baseRepo, manifest.Config.Digest, configBytes, manifest.Config.Size);
        var based = new BaseImage(manifest, ImageConfig.Parse(configBytes.ToArray()));

        var src = Path.Combine(_work, "app");
        await File.WriteAllTextAsync(src, "app");
        var appLayer = await new LayerBuilder(new BlobStore(Path.Combine(_work, "app-blobs"))).BuildAsync([new LayerEntry(src, "/app/run", Convert.ToInt32("755", 8))], Pinned);
        var app = ImageBuilder.Build(based, [appLayer], new ImageSettings { Created = Pinned, Entrypoint = ["/app/run"] });
        var result = await client.PushImageAsync(_repo, "app", app, new BlobStore(Path.Combine(_work, "app-blobs")), baseRepo);
        Assert.That(result.BlobsMounted, Is.EqualTo(1), "the base layer is mounted from the base repository, not uploaded");
        Assert.That(result.BlobsUploaded, Is.EqualTo(2), "the app layer and the config");
        var config = JsonDocument.Parse(MustRun("skopeo", "inspect", "--tls-verify=false", "--config", $"docker://{_registry}/{_repo}:app"));
        Assert.That(config.RootElement.GetProperty("rootfs").GetProperty("diff_ids").GetArrayLength(), Is.EqualTo(2));
        Assert.That(config.RootElement.GetProperty("config").GetProperty("Env")[0].GetString(), Is.EqualTo("PATH=/bin"));
    }

    [Test]
    public async Task Parallel_and_one_by_one_pushes_of_a_multi_layer_image_agree_blob_for_blob()
    {
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var rng = new Random(11);
        var layers = new List<Layer>();
        foreach (var (name, size) in new[] { ("a", 3_000_000), ("b", 200_000), ("c", 1_500_000) })
        {
            var file = Path.Combine(_work, name);
            var bytes = new byte[size];
            rng.NextBytes(bytes);
            await File.WriteAllBytesAsync(file, bytes);
            layers.Add(await new LayerBuilder(store).BuildAsync([new LayerEntry(file, "/data/" + name, Convert.ToInt32("644", 8))], Pinned));
        }
        var image = ImageBuilder.Build(null, layers, new ImageSettings { Created = Pinned });

        using var oneByOne = new RegistryClient(RegistryEndpoint.Parse(_registry), new RegistryClientOptions { UploadParallelism = 1 });
        // Parallel, with the 3 MB and 1.5 MB layers in 256 KiB chunks and the small one in one PUT, at the same time.
        using var parallel = new RegistryClient(RegistryEndpoint.Parse(_registry),
            new RegistryClientOptions { UploadParallelism = 4, ChunkedUploadThreshold = 1 << 20, ChunkSize = 256 * 1024 });
        var first = await oneByOne.PushImageAsync(_repo + "-seq", "v1", image, store);
        var second = await parallel.PushImageAsync(_repo + "-par", "v1", image, store);
        Assert.That(second.ManifestDigest, Is.EqualTo(first.ManifestDigest));
        Assert.That((first.BlobsUploaded, first.BlobsSkipped), Is.EqualTo((4, 0)), "three layers and the config");
        Assert.That((second.BlobsUploaded, second.BlobsSkipped), Is.EqualTo((4, 0)));
        foreach (var layer in layers)
        {
            var back = new MemoryStream();
            await parallel.GetBlobAsync(_repo + "-par", layer.Descriptor.Digest, back, layer.Descriptor.Size);
            Assert.That(back.ToArray(), Is.EqualTo(await File.ReadAllBytesAsync(layer.BlobPath)));
        }
        var again = await parallel.PushImageAsync(_repo + "-par", "v1", image, store);
        Assert.That((again.BlobsUploaded, again.BlobsSkipped), Is.EqualTo((0, 4)), "nothing is uploaded twice");
        var raw = JsonDocument.Parse(MustRun("skopeo", "inspect", "--tls-verify=false", "--raw", $"docker://{_registry}/{_repo}-par:v1"));
        Assert.That(raw.RootElement.GetProperty("layers").GetArrayLength(), Is.EqualTo(3));
    }
}
