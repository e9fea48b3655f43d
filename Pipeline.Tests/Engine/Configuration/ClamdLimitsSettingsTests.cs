using Pipeline.Engine.Configuration;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Configuration;

/// <summary>engine.yaml must say what clamd really scans: clamd's own configuration file, or explicit limits; never assumed.</summary>
public class ClamdLimitsSettingsTests
{
    private static string Yaml(string clamdExtra) => $"""
        pipelines: pipelines
        workDir: work
        database:
          connectionString: "Host=x;Username=y"
        clamd:
          endpoints: [tcp://127.0.0.1:3310]
        {clamdExtra}
        registry:
          url: http://127.0.0.1:5000
        internalGit:
          url: http://127.0.0.1:8088/git/internal
        """;

    private static (EngineSettings? Settings, ConfigErrors Errors) Parse(TempDir dir, string clamdExtra)
    {
        Directory.CreateDirectory(dir.Combine("pipelines"));
        var path = dir.Combine("engine.yaml");
        File.WriteAllText(path, Yaml(clamdExtra));
        var errors = new ConfigErrors();
        var settings = EngineSettingsLoader.Parse(path, File.ReadAllText(path), errors);
        return (settings, errors);
    }

    [Test]
    public void The_limits_are_read_from_the_clamd_configuration_file_it_names()
    {
        using var dir = new TempDir("engine-clamd-");
        File.WriteAllText(dir.Combine("clamd.conf"), "Foreground yes\nMaxFileSize 10M\nMaxScanSize 40M\nMaxRecursion 5\nMaxFiles 300\nStreamMaxLength 20M\n");
        var (settings, errors) = Parse(dir, "  configFile: clamd.conf");
        Assert.That(errors.All, Is.Empty);
        var l = settings!.Clamd.Limits;
        Assert.That((l.MaxFileSize, l.MaxScanSize, l.MaxRecursion, l.MaxFiles, l.StreamMaxLength), Is.EqualTo((10L << 20, 40L << 20, 5, 300, 20L << 20)));
        Assert.That(l.Source, Is.EqualTo("clamd configuration clamd.conf"), "only the file name: verdicts are signed and carry no local paths");
    }

    [Test]
    public void A_bad_line_in_the_clamd_configuration_is_an_error_at_that_file_and_line()
    {
        using var dir = new TempDir("engine-clamd-");
        File.WriteAllText(dir.Combine("clamd.conf"), "Foreground yes\n\nMaxFileSize 10 MB\n");
        var (_, errors) = Parse(dir, "  configFile: clamd.conf");
        var e = errors.All.Single();
        Assert.That(e.File, Is.EqualTo(dir.Combine("clamd.conf")));
        Assert.That(e.Line, Is.EqualTo(3));
        Assert.That(e.Message, Does.Contain("MaxFileSize '10 MB'"));
    }

    [Test]
    public void Without_a_clamd_configuration_or_explicit_limits_the_engine_does_not_start()
    {
        using var dir = new TempDir("engine-clamd-");
        var (_, errors) = Parse(dir, "");
        Assert.That(errors.All.Select(e => e.Message), Has.Some.Contains("the engine must know what clamd really scans"));
        var (_, missing) = Parse(dir, "  configFile: nowhere.conf");
        Assert.That(missing.All.Select(e => e.Message), Has.Some.Contains("nowhere.conf").And.Some.Contains("does not exist"));
    }

    [Test]
    public void Explicit_limits_are_validated()
    {
        using var dir = new TempDir("engine-clamd-");
        var (settings, errors) = Parse(dir, "  limits: { maxFileSize: 64MiB, maxScanSize: 256MiB, maxRecursion: 8, maxFiles: 10000, streamMaxLength: 64MiB }");
        Assert.That(errors.All, Is.Empty);
        Assert.That(settings!.Clamd.Limits.MaxScanSize, Is.EqualTo(256L << 20));
        var (_, bad) = Parse(dir, "  limits: { maxFileSize: 64MiB, maxScanSize: 256MiB, maxRecursion: 0, maxFiles: 10000 }");
        Assert.That(bad.All.Select(e => e.Message), Has.Some.Contains("maxRecursion").And.Some.Contains("streamMaxLength"));
    }
}
