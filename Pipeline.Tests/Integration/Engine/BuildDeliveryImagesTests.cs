using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Sbom;
using Pipeline.Engine.Stages;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// Delivery images end to end against the real registry: a multi-platform base built by our code,
/// a delivery with per-platform binaries; rebuilt by two `pipeline image build` processes in two
/// folders (byte-identical), one changed byte changes exactly one layer; pushed and checked with
/// skopeo + umoci, and run by a Docker engine when one is available.
/// </summary>
[Category("Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class BuildDeliveryImagesTests
{
    private static readonly DateTimeOffset TagTime = new(2025, 3, 14, 15, 9, 26, TimeSpan.Zero);
    private const string Commit = "0123456789abcdef0123456789abcdef01234567";
    private string _registry = "";
    private string _work = "";
    private string _prefix = "";
    private string _base = "";

    [OneTimeSetUp]
    public async Task PushBase()
    {
        _registry = TestServices.Require("PIPELINE_REGISTRY");
        _work = Path.Combine(Path.GetTempPath(), "build-it-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(_work);
        _prefix = "pipeline-tests/build-" + Guid.NewGuid().ToString("N")[..8];
        var store = new BlobStore(Path.Combine(_work, "base-blobs"));
        var amdRoot = Path.Combine(_work, "rootfs-amd64", "bin");
        Directory.CreateDirectory(amdRoot);
        File.Copy("/bin/busybox", Path.Combine(amdRoot, "busybox"));
        File.Copy("/bin/busybox", Path.Combine(amdRoot, "sh"));
        var armRoot = Path.Combine(_work, "rootfs-arm64", "etc");
        Directory.CreateDirectory(armRoot);
        await File.WriteAllTextAsync(Path.Combine(armRoot, "os-release"), "ID=arm64-placeholder\n");
        var settings = new ImageSettings { Created = DateTimeOffset.UnixEpoch, Env = new Dictionary<string, string> { ["PATH"] = "/bin" } };
        var amd = await ScratchBaseBuilder.BuildAsync(Path.GetDirectoryName(amdRoot)!, store, settings with { Platform = new Platform("amd64", "linux") }, DateTimeOffset.UnixEpoch);
        var arm = await ScratchBaseBuilder.BuildAsync(Path.GetDirectoryName(armRoot)!, store, settings with { Platform = new Platform("arm64", "linux") }, DateTimeOffset.UnixEpoch);
        using var client = new RegistryClient(RegistryEndpoint.Parse(_registry));
        var baseRepo = _prefix + "/base";
        await client.PushImageAsync(baseRepo, amd.ManifestDigest.ToString(), amd, store);
        await client.PushImageAsync(baseRepo, arm.ManifestDigest.ToString(), arm, store);
        var index = new ImageIndex([
            new Descriptor(MediaTypes.OciManifest, amd.ManifestDigest, amd.ManifestBytes.Length, Platform: new Platform("amd64", "linux")),
            new Descriptor(MediaTypes.OciManifest, arm.ManifestDigest, arm.ManifestBytes.Length, Platform: new Platform("arm64", "linux")),
        ]);
        var digest = await client.PushIndexAsync(baseRepo, "multi", index);
        _base = $"{baseRepo}@{digest}";
    }

    [OneTimeTearDown]
    public void Cleanup()
    {
        if (Directory.Exists(_work)) Directory.Delete(_work, true);
    }

    private string Delivery(string name)
    {
        var dir = Path.Combine(_work, name);
        foreach (var p in new[] { "linux-amd64", "linux-arm64" })
        {
            Directory.CreateDirectory(Path.Combine(dir, "bin", p, "lib"));
            File.WriteAllText(Path.Combine(dir, "bin", p, "hello"), $"#!/bin/sh\necho \"hello {p} uid $(/bin/busybox id -u)\"\n");
            File.WriteAllBytes(Path.Combine(dir, "bin", p, "lib", "payload.bin"), Enumerable.Range(0, 4096).Select(i => (byte)(i * 7 + p.Length)).ToArray());
        }
        Directory.CreateDirectory(Path.Combine(dir, "docs"));
        File.WriteAllText(Path.Combine(dir, "docs", "README.md"), "# hello\n");
        File.WriteAllText(Path.Combine(dir, "docs", "App.deps.json"), """{"libraries":{"App/1.0.0":{"type":"project"},"Serilog/4.0.0":{"type":"package"}}}""");
        File.WriteAllText(Path.Combine(dir, DeliveryManifest.FileName), $"""
            version: 1
            images:
              - name: hello
                base: {_base}
                platforms: [linux/amd64, linux/arm64]
                files:
                  - from: bin/{"{platform}"}
                    to: /opt/hello
                    mode: "0755"
                  - from: docs
                    to: /usr/share/doc/hello
                    mode: "0644"
                    dirMode: "0750"
                entrypoint: [/opt/hello/hello]
                workingDir: /opt/hello
                user: "10001:10001"
                healthcheck: [/opt/hello/hello, --health]
                env: {"{"}LANG: C.UTF-8{"}"}
                ports: [8080]
            """);
        return dir;
    }

    private (string Stdout, string OutDir) RunPipelineBuild(string delivery, string outName)
    {
        var outDir = Path.Combine(_work, outName);
        var dll = Path.Combine(AppContext.BaseDirectory, "pipeline.dll");
        Assert.That(File.Exists(dll), Is.True, "the engine is built next to the tests");
        var r = Shell.Run("dotnet", [dll, "image", "build", "--delivery", delivery, "--out", outDir, "--registry", _registry,
            "--tag", "v1.2.3", "--commit", Commit, "--time", "2025-03-14T15:09:26Z", "--source", "http://git.internal/demo/hello.git",
            "--repository-prefix", _prefix + "/apps", "--pipeline", "demo", "--supplier", "Demo Supplier GmbH", "--allow-base", _base]);
        r.EnsureSuccess("pipeline image build");
        return (r.Stdout, outDir);
    }

    private static List<string> Layers(string outDir, string platform)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(outDir, "hello", platform, "manifest.json")));
        return doc.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("digest").GetString()!).ToList();
    }

    [Test]
    public void Two_processes_in_two_folders_build_byte_identical_images_and_one_changed_byte_changes_one_layer()
    {
        var (out1, dir1) = RunPipelineBuild(Delivery("delivery-a"), "out-a");
        var (out2, dir2) = RunPipelineBuild(Delivery("delivery-b"), "out-b");
        Assert.That(out2, Is.EqualTo(out1), "same digests printed");
        Assert.That(out1, Does.StartWith($"hello {_prefix}/apps/hello@sha256:"));
        foreach (var file in new[] { "index.json", "linux-amd64/manifest.json", "linux-amd64/config.json", "linux-amd64/sbom.spdx.json",
                     "linux-arm64/manifest.json", "linux-arm64/config.json", "linux-arm64/sbom.spdx.json" })
            Assert.That(File.ReadAllBytes(Path.Combine(dir2, "hello", file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir1, "hello", file))), file);
        // What both printed is the index digest (what the tag points to), and the index names both platform manifests.
        var indexDigest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(dir1, "hello", "index.json"))));
        Assert.That(out1.Split('\n')[0], Does.EndWith("@" + indexDigest));
        using (var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir1, "hello", "index.json"))))
        {
            var listed = index.RootElement.GetProperty("manifests").EnumerateArray().Select(m => m.GetProperty("digest").GetString()).ToList();
            var manifests = new[] { "linux-amd64", "linux-arm64" }.Select(p =>
                "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(dir1, "hello", p, "manifest.json"))))).ToList();
            Assert.That(listed, Is.EqualTo(manifests));
        }
        foreach (var p in new[] { "linux-amd64", "linux-arm64" })
            JsonSchemas.AssertSpdx(File.ReadAllBytes(Path.Combine(dir1, "hello", p, "sbom.spdx.json")), p + " SBOM");

        var changed = Delivery("delivery-c");
        var payload = Path.Combine(changed, "bin", "linux-amd64", "lib", "payload.bin");
        var bytes = File.ReadAllBytes(payload);
        bytes[1000] ^= 0x01;
        File.WriteAllBytes(payload, bytes);
        var (out3, dir3) = RunPipelineBuild(changed, "out-c");
        Assert.That(out3, Is.Not.EqualTo(out1));
        var before = Layers(dir1, "linux-amd64");
        var after = Layers(dir3, "linux-amd64");
        Assert.That(after, Has.Count.EqualTo(before.Count));
        Assert.That(Enumerable.Range(0, before.Count).Count(i => before[i] != after[i]), Is.EqualTo(1), "exactly one layer differs");
        Assert.That(after[^2], Is.Not.EqualTo(before[^2]), "it is the binaries' layer");
        Assert.That(Layers(dir3, "linux-arm64"), Is.EqualTo(Layers(dir1, "linux-arm64")), "the other platform is untouched");
    }

    [Test]
    public async Task Pushed_delivery_image_is_what_skopeo_umoci_and_docker_see()
    {
        var delivery = Delivery("delivery-push");
        var manifest = DeliveryManifestParser.Load(delivery, [_base]);
        var inputs = new DeliveryBuildInputs(delivery, manifest, "demo", "Demo Supplier GmbH", _prefix + "/apps", "v1.2.3", Commit, TagTime,
            "http://git.internal/demo/hello.git", Path.Combine(_work, "push-blobs"));
        using var client = new RegistryClient(RegistryEndpoint.Parse(_registry));
        var build = (await DeliveryImageBuilder.BuildAsync(inputs, client, CancellationToken.None)).Single();
        Assert.That(build.Index, Is.Not.Null);
        var store = new BlobStore(inputs.StoreDir);
        foreach (var p in build.Platforms)
        {
            var first = await client.PushImageAsync(build.Repository, p.Image.ManifestDigest.ToString(), p.Image, store, build.BaseRepository);
            Assert.That(first.BlobsMounted, Is.EqualTo(1), "the base layer is mounted, not uploaded");
            await client.AttachArtifactAsync(build.Repository, p.Image.ManifestDescriptor, SpdxSbom.MediaType, [(p.SbomDescriptor, p.Sbom)]);
        }
        await client.PushIndexAsync(build.Repository, "v1.2.3", build.Index!);
        var again = await client.PushImageAsync(build.Repository, build.Platforms[0].Image.ManifestDigest.ToString(), build.Platforms[0].Image, store, build.BaseRepository);
        Assert.That(again.BlobsUploaded, Is.Zero, "a second push of an unchanged image uploads no blob");

        var reference = $"docker://{_registry}/{build.Repository}:v1.2.3";
        var raw = Shell.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", reference]);
        raw.EnsureSuccess("skopeo inspect --raw");
        Assert.That(Encoding.UTF8.GetBytes(raw.Stdout.TrimEnd('\n')), Is.EqualTo(build.IndexBytes));
        var cfg = Shell.Run("skopeo", ["inspect", "--config", "--raw", "--tls-verify=false", "--override-arch", "amd64", reference]);
        cfg.EnsureSuccess("skopeo inspect --config");
        Assert.That(Encoding.UTF8.GetBytes(cfg.Stdout.TrimEnd('\n')), Is.EqualTo(build.Platforms[0].Image.ConfigBytes), "skopeo picks our amd64 config");
        using (var config = JsonDocument.Parse(cfg.Stdout))
        {
            var c = config.RootElement.GetProperty("config");
            Assert.That(c.GetProperty("User").GetString(), Is.EqualTo("10001:10001"));
            Assert.That(c.GetProperty("Healthcheck").GetProperty("Test").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "CMD", "/opt/hello/hello", "--health" }));
            Assert.That(c.GetProperty("Labels").GetProperty("org.opencontainers.image.revision").GetString(), Is.EqualTo(Commit));
            Assert.That(c.GetProperty("Labels").GetProperty("org.opencontainers.image.created").GetString(), Is.EqualTo("2025-03-14T15:09:26Z"));
            Assert.That(config.RootElement.GetProperty("architecture").GetString(), Is.EqualTo("amd64"));
        }
        var sboms = await client.ListReferrersAsync(build.Repository, build.Platforms[0].Image.ManifestDigest, SpdxSbom.MediaType);
        Assert.That(sboms, Has.Count.EqualTo(1), "the SBOM is attached to the amd64 image");

        var layout = Path.Combine(_work, "layout");
        Shell.Run("skopeo", ["copy", "--src-tls-verify=false", "--override-arch", "amd64", reference, $"oci:{layout}:v1"]).EnsureSuccess("skopeo copy");
        if (Environment.UserName != "root") throw TestServices.Unavailable("umoci unpack needs root to keep owners; run the suite as root (as CI does)");
        {
            var bundle = Path.Combine(_work, "bundle");
            Shell.Run("umoci", ["unpack", "--image", $"{layout}:v1", bundle]).EnsureSuccess("umoci unpack");
            var rootfs = Path.Combine(bundle, "rootfs");
            string Stat(string rel) => Shell.Run("stat", ["-c", "%a %u:%g %Y", Path.Combine(rootfs, rel)]).Stdout.Trim();
            Assert.That(File.ReadAllText(Path.Combine(rootfs, "opt/hello/hello")), Does.Contain("hello linux-amd64"));
            Assert.That(Stat("opt/hello/hello"), Is.EqualTo($"755 0:0 {TagTime.ToUnixTimeSeconds()}"));
            Assert.That(Stat("opt/hello/lib/payload.bin"), Does.StartWith("755 0:0"));
            Assert.That(Stat("usr/share/doc/hello/README.md"), Does.StartWith("644 0:0"));
            Assert.That(Stat("usr/share/doc/hello"), Does.StartWith("750 0:0"));
            Assert.That(File.Exists(Path.Combine(rootfs, "bin", "busybox")), Is.True, "the base's layer is below");
        }

        // Without a Docker engine the skopeo/umoci parts above have passed; the run part fails under PIPELINE_REQUIRE_SERVICES=1.
        var docker = TestServices.Require("PIPELINE_DOCKER_HOST");
        var image = $"{_registry}/{build.Repository}:v1.2.3";
        Shell.Run("docker", ["-H", docker, "pull", "--platform", "linux/amd64", image]).EnsureSuccess("docker pull");
        var run = Shell.Run("docker", ["-H", docker, "run", "--rm", "--network", "none", image]);
        run.EnsureSuccess("docker run");
        Assert.That(run.Stdout.Trim(), Is.EqualTo("hello linux-amd64 uid 10001"), "the entrypoint runs as the declared non-root user");
        Shell.Run("docker", ["-H", docker, "rmi", image]);
    }
}
