using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Model;

public class ImageConfigTests
{
    [Test]
    public void Roundtrip_keeps_all_fields_and_bytes()
    {
        var config = new ImageConfig("amd64", "linux",
            new RootFs([Digest.Compute("x"u8)]),
            new ContainerConfig("1000:1000", ["A=1", "PATH=/bin"], ["/app/run"], ["--serve"], "/app",
                ["8080/tcp"], new Dictionary<string, string> { ["b"] = "2", ["a"] = "1" }),
            [new HistoryEntry(new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero), "pipeline", Comment: "layer")],
            new DateTimeOffset(2024, 1, 2, 3, 4, 5, TimeSpan.Zero));
        var bytes = config.ToJsonBytes();
        var json = Encoding.UTF8.GetString(bytes);
        Assert.That(json, Does.StartWith("{\"created\":\"2024-01-02T03:04:05Z\",\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"1000:1000\",\"ExposedPorts\":{\"8080/tcp\":{}}"));
        Assert.That(json, Does.Contain("\"Labels\":{\"a\":\"1\",\"b\":\"2\"}"));
        Assert.That(json, Does.Contain("\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:"));
        var parsed = ImageConfig.Parse(bytes);
        Assert.That(parsed.ToJsonBytes(), Is.EqualTo(bytes));
        Assert.That(parsed.Config!.Entrypoint, Is.EqualTo(new[] { "/app/run" }));
    }

    [Test]
    public void Parses_docker_style_config_with_nanosecond_times()
    {
        var json = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2023-05-01T10:11:12.123456789Z\"," +
                   "\"config\":{\"Env\":[\"PATH=/usr/bin\"],\"Cmd\":[\"sh\"]},\"container_config\":{}," +
                   "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" + Digest.Compute("y"u8) + "\"]}}";
        var parsed = ImageConfig.Parse(Encoding.UTF8.GetBytes(json));
        Assert.That(parsed.Created!.Value.Ticks % TimeSpan.TicksPerSecond, Is.EqualTo(1234567));
        Assert.That(parsed.Config!.Cmd, Is.EqualTo(new[] { "sh" }));
    }

    [TestCase("{\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", "'architecture' is required")]
    [TestCase("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"tarballs\",\"diff_ids\":[]}}", "must be 'layers'")]
    [TestCase("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"md5:00\"]}}", "'rootfs.diff_ids[0]' is invalid")]
    [TestCase("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"config\":{\"Env\":\"A=1\"}}", "'config.Env' must be an array")]
    public void Parse_rejects_invalid(string json, string reason)
    {
        var ex = Assert.Throws<RegistryException>(() => ImageConfig.Parse(Encoding.UTF8.GetBytes(json)))!;
        Assert.That(ex.Code, Is.EqualTo("REG-CONFIG-001"));
        Assert.That(ex.Message, Does.Contain(reason));
    }
}

public class ImageConfigUnknownFieldTests
{
    private const string BaseConfig = """
        {"architecture":"amd64","os":"linux","config":{"User":"1","Healthcheck":{"Test":["CMD","/bin/check"],"Interval":30000000000},"OnBuild":null,"Shell":["/bin/sh","-c"]},
         "rootfs":{"type":"layers","diff_ids":[]},"container":"abc","docker_version":"20.10"}
        """;

    [Test]
    public void Unknown_fields_survive_a_rewrite()
    {
        var config = Pipeline.Registry.Model.ImageConfig.Parse(System.Text.Encoding.UTF8.GetBytes(BaseConfig));
        var json = System.Text.Encoding.UTF8.GetString(config.ToJsonBytes());
        Assert.That(json, Does.Contain("\"Healthcheck\":{\"Test\":[\"CMD\",\"/bin/check\"],\"Interval\":30000000000}"));
        Assert.That(json, Does.Contain("\"Shell\":[\"/bin/sh\",\"-c\"]"));
        Assert.That(json, Does.Contain("\"container\":\"abc\""));
        Assert.That(json, Does.Contain("\"docker_version\":\"20.10\""));
        var again = Pipeline.Registry.Model.ImageConfig.Parse(config.ToJsonBytes()).ToJsonBytes();
        Assert.That(again, Is.EqualTo(config.ToJsonBytes()), "stable through a second round trip");
    }

    [Test]
    public void Image_built_on_the_base_keeps_unknown_fields_and_can_replace_the_healthcheck()
    {
        var config = Pipeline.Registry.Model.ImageConfig.Parse(System.Text.Encoding.UTF8.GetBytes(BaseConfig));
        var manifest = new Pipeline.Registry.Model.ImageManifest(
            new Pipeline.Registry.Model.Descriptor(Pipeline.Registry.Model.MediaTypes.OciConfig, Pipeline.Registry.Model.Digest.Compute("c"u8), 1), []);
        var baseImage = new Pipeline.Registry.Images.BaseImage(manifest, config);
        var kept = Pipeline.Registry.Images.ImageBuilder.Build(baseImage, [], new Pipeline.Registry.Images.ImageSettings());
        Assert.That(System.Text.Encoding.UTF8.GetString(kept.ConfigBytes), Does.Contain("\"Healthcheck\":{\"Test\":[\"CMD\",\"/bin/check\"]").And.Contain("\"docker_version\""));
        var replaced = Pipeline.Registry.Images.ImageBuilder.Build(baseImage, [], new Pipeline.Registry.Images.ImageSettings { Healthcheck = ["/app/health", "--quick"] });
        var text = System.Text.Encoding.UTF8.GetString(replaced.ConfigBytes);
        Assert.That(text, Does.Contain("\"Healthcheck\":{\"Test\":[\"CMD\",\"/app/health\",\"--quick\"]}"));
        Assert.That(text, Does.Contain("\"Shell\":[\"/bin/sh\",\"-c\"]"));
    }
}
