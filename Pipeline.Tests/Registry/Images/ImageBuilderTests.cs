using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Images;

public class ImageBuilderTests
{
    private static readonly DateTimeOffset Created = new(2024, 5, 1, 0, 0, 0, TimeSpan.Zero);

    private static Layer FakeLayer(string seed) =>
        new(new Descriptor(MediaTypes.OciLayerTarGzip, Digest.Compute(Encoding.UTF8.GetBytes("gz" + seed)), 42), Digest.Compute(Encoding.UTF8.GetBytes("tar" + seed)), "/nonexistent");

    private static BaseImage Base()
    {
        var baseLayer = FakeLayer("base");
        var config = new ImageConfig("arm64", "linux", new RootFs([baseLayer.DiffId]),
            new ContainerConfig(User: "0", Env: ["PATH=/bin", "LANG=C"], Cmd: ["sh"], Labels: new Dictionary<string, string> { ["from"] = "base", ["keep"] = "1" }, ExposedPorts: ["22/tcp"]),
            [new HistoryEntry(CreatedBy: "busybox")]);
        var configBytes = config.ToJsonBytes();
        var manifest = new ImageManifest(new Descriptor(MediaTypes.OciConfig, Digest.Compute(configBytes), configBytes.Length),
            [baseLayer.Descriptor with { }]);
        return new BaseImage(manifest, config);
    }

    private static ImageSettings Settings() => new()
    {
        Entrypoint = ["/app/run"],
        Env = new Dictionary<string, string> { ["PATH"] = "/app:/bin", ["APP_MODE"] = "prod" },
        Labels = new Dictionary<string, string> { ["from"] = "app" },
        ExposedPorts = ["8080/tcp"],
        User = "1000:1000",
        WorkingDir = "/app",
        Created = Created,
        HistoryComment = "delivery v1",
    };

    [Test]
    public void Same_inputs_give_same_bytes_and_digests()
    {
        var a = ImageBuilder.Build(Base(), [FakeLayer("x")], Settings());
        var b = ImageBuilder.Build(Base(), [FakeLayer("x")], Settings());
        Assert.That(b.ManifestBytes, Is.EqualTo(a.ManifestBytes));
        Assert.That(b.ConfigBytes, Is.EqualTo(a.ConfigBytes));
        Assert.That(a.ManifestDigest, Is.EqualTo(Digest.Compute(a.ManifestBytes)));
        Assert.That(a.ConfigDigest, Is.EqualTo(Digest.Compute(a.ConfigBytes)));
        var c = ImageBuilder.Build(Base(), [FakeLayer("y")], Settings());
        Assert.That(c.ManifestDigest, Is.Not.EqualTo(a.ManifestDigest));
    }

    [Test]
    public void Settings_merge_over_base()
    {
        var image = ImageBuilder.Build(Base(), [FakeLayer("x")], Settings());
        var config = ImageConfig.Parse(image.ConfigBytes);
        var manifest = ImageManifest.Parse(image.ManifestBytes);
        Assert.That(config.Architecture, Is.EqualTo("arm64"));
        Assert.That(config.Config!.Env, Is.EqualTo(new[] { "PATH=/app:/bin", "LANG=C", "APP_MODE=prod" }));
        Assert.That(config.Config.Cmd, Is.Null, "a new entrypoint clears the base's cmd");
        Assert.That(config.Config.Entrypoint, Is.EqualTo(new[] { "/app/run" }));
        Assert.That(config.Config.Labels, Is.EqualTo(new Dictionary<string, string> { ["from"] = "app", ["keep"] = "1" }));
        Assert.That(config.Config.ExposedPorts, Is.EqualTo(new[] { "22/tcp", "8080/tcp" }));
        Assert.That(config.Config.User, Is.EqualTo("1000:1000"));
        Assert.That(config.RootFs.DiffIds, Is.EqualTo(new[] { FakeLayer("base").DiffId, FakeLayer("x").DiffId }));
        Assert.That(config.History!.Select(h => h.Comment), Is.EqualTo(new[] { null, "delivery v1" }));
        Assert.That(manifest.Layers.Select(l => l.Digest), Is.EqualTo(new[] { FakeLayer("base").Descriptor.Digest, FakeLayer("x").Descriptor.Digest }));
        Assert.That(manifest.Config.Digest, Is.EqualTo(image.ConfigDigest));
        Assert.That(image.AllLayers, Has.Count.EqualTo(2));
        Assert.That(image.NewLayers, Has.Count.EqualTo(1));
    }

    [Test]
    public void Scratch_image_uses_settings_platform_and_no_base()
    {
        var image = ImageBuilder.Build(null, [FakeLayer("x")], Settings() with { Platform = new Platform("amd64", "linux") });
        var config = ImageConfig.Parse(image.ConfigBytes);
        Assert.That(config.Architecture, Is.EqualTo("amd64"));
        Assert.That(config.Config!.Env, Is.EqualTo(new[] { "APP_MODE=prod", "PATH=/app:/bin" }));
        Assert.That(config.Created, Is.EqualTo(Created));
    }

    [Test]
    public void Inconsistent_base_is_rejected()
    {
        var b = Base();
        var broken = b with { Manifest = b.Manifest with { Layers = [] } };
        var ex = Assert.Throws<RegistryException>(() => ImageBuilder.Build(broken, [], Settings()))!;
        Assert.That(ex.Code, Is.EqualTo("REG-IMAGE-001"));
        Assert.That(ex.Message, Does.Contain("0 layers but 1 diff_ids"));
    }

    [TestCase("A=B", "environment variable name")]
    [TestCase("", "environment variable name")]
    public void Bad_env_name_is_rejected(string key, string reason)
    {
        var ex = Assert.Throws<RegistryException>(() => ImageBuilder.Build(null, [], Settings() with { Env = new Dictionary<string, string> { [key] = "x" } }))!;
        Assert.That(ex.Message, Does.Contain(reason));
    }

    [Test]
    public async Task Scratch_base_builder_builds_from_folder()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rootfs-" + Guid.NewGuid().ToString("N"));
        var storeDir = dir + "-store";
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "bin"));
            await File.WriteAllTextAsync(Path.Combine(dir, "bin", "tool"), "#!/bin/sh\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(Path.Combine(dir, "bin", "tool"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
            var store = new BlobStore(storeDir);
            var image = await ScratchBaseBuilder.BuildAsync(dir, store, new ImageSettings { Created = Created, Cmd = ["/bin/tool"] }, Created);
            Assert.That(image.NewLayers, Has.Count.EqualTo(1));
            Assert.That(store.Contains(image.NewLayers[0].Descriptor.Digest));
            var again = await ScratchBaseBuilder.BuildAsync(dir, new BlobStore(storeDir + "2"), new ImageSettings { Created = Created, Cmd = ["/bin/tool"] }, Created);
            Assert.That(again.ManifestDigest, Is.EqualTo(image.ManifestDigest));
        }
        finally
        {
            foreach (var d in new[] { dir, storeDir, storeDir + "2" }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }
}
