using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Definitions;

public class DeliveryManifestTests
{
    private const string Base = "base/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    private static (DeliveryManifest? Manifest, ConfigErrors Errors) Parse(string yaml, TempDir tree)
    {
        var errors = new ConfigErrors();
        return (DeliveryManifestParser.Parse(yaml, tree.Path, [Base], errors), errors);
    }

    private static TempDir Tree()
    {
        var t = new TempDir();
        Directory.CreateDirectory(t.Combine("bin"));
        File.WriteAllText(t.Combine("bin", "app"), "x");
        return t;
    }

    [Test]
    public void A_valid_manifest_parses_with_defaults()
    {
        using var tree = Tree();
        var (m, errors) = Parse($"""
            version: 1
            images:
              - name: app
                base: {Base}
                files:
                  - from: bin/
                    to: /opt/app
                entrypoint: [/opt/app/app]
                user: "10001"
                ports: [8080]
                env: {"{"}MODE: prod{"}"}
            """, tree);
        Assert.That(errors.All, Is.Empty);
        var image = m!.Images.Single();
        Assert.That(image.Files.Single(), Is.EqualTo(new FileMapping("bin", "/opt/app", Convert.ToInt32("755", 8))));
        Assert.That(image.Ports, Is.EqualTo(new[] { "8080/tcp" }));
        Assert.That(image.Env["MODE"], Is.EqualTo("prod"));
    }

    [Test]
    public void Hostile_or_wrong_settings_are_all_reported()
    {
        using var tree = Tree();
        var (m, errors) = Parse("""
            version: 1
            images:
              - name: app
                base: base/other@sha256:2222222222222222222222222222222222222222222222222222222222222222
                files:
                  - from: ../../etc
                    to: /opt/app
                  - from: bin
                    to: relative/path
                    mode: "4755"
                user: "0"
                ports: [70000]
                labels: {org.opencontainers.image.source: evil}
                privileged: true
            """, tree);
        Assert.That(m, Is.Null);
        var messages = errors.All.Select(e => e.Message).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(messages, Has.One.Contains("not on this pipeline's list of allowed base images"));
            Assert.That(messages, Has.One.Contains("must be a relative path inside the delivery"));
            Assert.That(messages, Has.One.Contains("must be an absolute path"));
            Assert.That(messages, Has.One.Contains("not a valid file mode"));
            Assert.That(messages, Has.One.Contains("must not run as root"));
            Assert.That(messages, Has.One.Contains("port '70000'"));
            Assert.That(messages, Has.One.Contains("set by the engine"));
            Assert.That(messages, Has.One.EqualTo("unknown key 'images[0].privileged'"));
        });
    }

    [Test]
    public void A_mapping_from_a_symlink_is_refused()
    {
        using var tree = Tree();
        File.CreateSymbolicLink(tree.Combine("link"), "/etc");
        var (m, errors) = Parse($"""
            version: 1
            images:
              - name: app
                base: {Base}
                files: [{"{"}from: link, to: /x{"}"}]
                user: "1000"
            """, tree);
        Assert.That(m, Is.Null);
        Assert.That(errors.All.Single().Message, Does.Contain("does not exist in the delivery"));
    }

    [Test]
    public void A_missing_delivery_yaml_is_a_clear_error()
    {
        using var tree = Tree();
        var e = Assert.Throws<ConfigurationException>(() => DeliveryManifestParser.Load(tree.Path, [Base]))!;
        Assert.That(e.Errors.Single().Message, Is.EqualTo("the delivery has no delivery.yaml"));
    }
}
