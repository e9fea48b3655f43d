using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Definitions;

public class DeliveryManifestPlatformTests
{
    private const string Base = "base/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    private static (DeliveryManifest? Manifest, ConfigErrors Errors) Parse(string yaml, TempDir tree, bool allowRoot = false)
    {
        var errors = new ConfigErrors();
        return (DeliveryManifestParser.Parse(yaml, tree.Path, [Base], errors, allowRoot), errors);
    }

    private static TempDir Tree(params string[] platforms)
    {
        var t = new TempDir();
        foreach (var p in platforms)
        {
            Directory.CreateDirectory(t.Combine("bin", p));
            File.WriteAllText(t.Combine("bin", p, "app"), p);
        }
        return t;
    }

    private static string Yaml(string extra, string from = "bin/{platform}") => $"""
        version: 1
        images:
          - name: app
            base: {Base}
            files:
              - from: {from}
                to: /opt/app
                mode: "0750"
                dirMode: "0710"
            user: "10001:10001"
        {extra}
        """;

    [Test]
    public void Platforms_with_per_platform_folders_and_a_healthcheck_parse()
    {
        using var tree = Tree("linux-amd64", "linux-arm64");
        var (m, errors) = Parse(Yaml("""
                platforms: [linux/amd64, linux/arm64]
                healthcheck: [/opt/app/app, --health]
            """), tree);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All.Select(e => e.Message)));
        var image = m!.Images.Single();
        Assert.That(image.Platforms, Is.EqualTo(new[] { "linux/amd64", "linux/arm64" }));
        Assert.That(image.Healthcheck, Is.EqualTo(new[] { "/opt/app/app", "--health" }));
        var files = image.Files.Single();
        Assert.That(files.FromFor("linux/arm64"), Is.EqualTo("bin/linux-arm64"));
        Assert.That(files.FileMode, Is.EqualTo(Convert.ToInt32("750", 8)));
        Assert.That(files.DirMode, Is.EqualTo(Convert.ToInt32("710", 8)));
    }

    [Test]
    public void Default_platform_is_linux_amd64()
    {
        using var tree = Tree("linux-amd64");
        var (m, errors) = Parse(Yaml(""), tree);
        Assert.That(errors.All, Is.Empty);
        Assert.That(m!.Images.Single().Platforms, Is.EqualTo(new[] { "linux/amd64" }));
    }

    [Test]
    public void A_missing_platform_folder_is_reported_for_that_platform()
    {
        using var tree = Tree("linux-amd64");
        var (m, errors) = Parse(Yaml("    platforms: [linux/amd64, linux/arm64]"), tree);
        Assert.That(m, Is.Null);
        var e = errors.All.Single();
        Assert.That(e.Message, Is.EqualTo("'from: bin/linux-arm64' (platform linux/arm64) does not exist in the delivery (or is not a regular file or folder)"));
        Assert.That(e.Line, Is.GreaterThan(0));
    }

    [Test]
    public void Unsupported_or_duplicate_platforms_and_bad_healthchecks_are_all_reported()
    {
        using var tree = Tree("linux-amd64");
        var (m, errors) = Parse(Yaml("""
                platforms: [linux/amd64, windows/amd64, linux/amd64]
                healthcheck: [curl, localhost]
            """), tree);
        Assert.That(m, Is.Null);
        var messages = errors.All.Select(e => e.Message).ToList();
        Assert.That(messages, Has.One.EqualTo("platform 'windows/amd64' is not supported"));
        Assert.That(messages, Has.One.EqualTo("a platform is listed twice"));
        Assert.That(messages, Has.One.Contains("'healthcheck' must be an exec-form command whose first element is an absolute path"));
    }

    [Test]
    public void Symlink_inside_a_mapped_folder_pointing_outside_is_rejected_before_building()
    {
        using var tree = Tree("linux-amd64");
        File.CreateSymbolicLink(tree.Combine("bin", "linux-amd64", "passwd"), "/etc/passwd");
        var (m, errors) = Parse(Yaml(""), tree);
        Assert.That(m, Is.Null);
        Assert.That(errors.All.Single().Message, Is.EqualTo("'from: bin/linux-amd64' (platform linux/amd64): 'bin/linux-amd64/passwd' is a symbolic link pointing outside the delivery"));
    }

    [Test]
    public void Setuid_file_in_the_delivery_is_rejected()
    {
        using var tree = Tree("linux-amd64");
        File.SetUnixFileMode(tree.Combine("bin", "linux-amd64", "app"), (UnixFileMode)Convert.ToInt32("4755", 8));
        var (m, errors) = Parse(Yaml(""), tree);
        Assert.That(m, Is.Null);
        Assert.That(errors.All.Single().Message, Does.EndWith("'bin/linux-amd64/app' has the setuid or setgid bit"));
    }

    [Test]
    public void Fifo_in_the_delivery_is_rejected()
    {
        using var tree = Tree("linux-amd64");
        Shell.Run("mkfifo", [tree.Combine("bin", "linux-amd64", "pipe")]).EnsureSuccess("mkfifo");
        var (m, errors) = Parse(Yaml(""), tree);
        Assert.That(m, Is.Null);
        Assert.That(errors.All.Single().Message, Does.EndWith("'bin/linux-amd64/pipe' is a device, FIFO or socket"));
    }

    [Test]
    public void Root_user_is_refused_unless_the_pipeline_allows_it()
    {
        using var tree = Tree("linux-amd64");
        var yaml = Yaml("").Replace("user: \"10001:10001\"", "user: \"0\"");
        var (refused, errors) = Parse(yaml, tree);
        Assert.That(refused, Is.Null);
        Assert.That(errors.All.Single().Message, Is.EqualTo("images must not run as root (uid 0)"));
        Assert.That(errors.All.Single().Hint, Does.Contain("images.allowRoot: true"));
        var (allowed, none) = Parse(yaml, tree, allowRoot: true);
        Assert.That(none.All, Is.Empty);
        Assert.That(allowed!.Images.Single().User, Is.EqualTo("0"));
    }

    [Test]
    public void Unknown_placeholder_is_reported()
    {
        using var tree = Tree("linux-amd64");
        Directory.CreateDirectory(tree.Combine("bin", "{arch}"));
        var (m, errors) = Parse(Yaml("", from: "bin/{arch}"), tree);
        Assert.That(m, Is.Null);
        Assert.That(errors.All.Select(e => e.Message), Has.One.Contains("has an unknown placeholder"));
    }
}
