using Pipeline.Engine.Configuration;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Configuration;

/// <summary>engine.yaml <c>metrics:</c>, <c>logging:</c> and systemd credentials: validated with the rest, every error at once.</summary>
[NonParallelizable] // sets CREDENTIALS_DIRECTORY and PIPELINE_LOG_FORMAT for the process
public class OperationsSettingsTests
{
    private static (EngineSettings? Settings, ConfigErrors Errors) Parse(TempDir dir, string extra, string databaseExtra = "")
    {
        Directory.CreateDirectory(dir.Combine("pipelines"));
        var path = dir.Combine("engine.yaml");
        File.WriteAllText(path, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "Host=x;Username=y"
            {databaseExtra}
            clamd:
              endpoints: [tcp://127.0.0.1:3310]
              limits: {"{"} maxFileSize: 25MiB, maxScanSize: 100MiB, maxRecursion: 16, maxFiles: 10000, streamMaxLength: 25MiB {"}"}
            registry:
              url: http://127.0.0.1:5000
            internalGit:
              url: http://127.0.0.1:8088/git/internal
            {extra}
            """);
        var errors = new ConfigErrors();
        return (EngineSettingsLoader.Parse(path, File.ReadAllText(path), errors), errors);
    }

    [Test]
    public void Metrics_listen_and_log_format_are_read()
    {
        using var dir = new TempDir("ops-settings-");
        var (settings, errors) = Parse(dir, "metrics:\n  listen: 127.0.0.1:9464\nlogging:\n  format: json");
        Assert.That(errors.All, Is.Empty);
        Assert.That(settings!.Metrics!.Url, Is.EqualTo("http://127.0.0.1:9464"));
        Assert.That(settings.Logging.Format, Is.EqualTo(LogFormat.Json));
    }

    [Test]
    public void Without_the_sections_nothing_is_served_and_logs_are_text()
    {
        using var dir = new TempDir("ops-settings-");
        var (settings, errors) = Parse(dir, "");
        Assert.That(errors.All, Is.Empty);
        Assert.That(settings!.Metrics, Is.Null);
        Assert.That(settings.Logging.Format, Is.EqualTo(LogFormat.Text));
    }

    [Test]
    public void A_remote_or_malformed_listen_address_and_an_unknown_format_are_all_reported_with_their_lines()
    {
        using var dir = new TempDir("ops-settings-");
        var (settings, errors) = Parse(dir, "metrics:\n  listen: 0.0.0.0:9464\nlogging:\n  format: xml");
        Assert.That(settings, Is.Null);
        Assert.That(errors.All.Select(e => e.Message), Has.Some.Contains("'metrics.listen' 0.0.0.0:9464 is not a loopback address"));
        Assert.That(errors.All.Select(e => e.Message), Has.Some.Contains("'logging.format' must be 'json' or 'text', not 'xml'"));
        Assert.That(errors.All.Select(e => e.Line), Is.All.GreaterThan(10), "errors point at the lines of the metrics and logging sections");

        var (_, malformed) = Parse(dir, "metrics:\n  listen: localhost");
        Assert.That(malformed.All.Single().Message, Does.Contain("must be ADDRESS:PORT such as 127.0.0.1:9464, not 'localhost'"));

        var (remote, none) = Parse(dir, "metrics:\n  listen: 0.0.0.0:9464\n  allowRemote: true");
        Assert.That(none.All, Is.Empty);
        Assert.That(remote!.Metrics!.AllowRemote, Is.True);
    }

    [Test]
    public void A_credential_setting_reads_the_file_systemd_provides_in_the_credentials_directory()
    {
        using var dir = new TempDir("ops-settings-");
        var creds = Directory.CreateDirectory(dir.Combine("credentials")).FullName;
        File.WriteAllText(Path.Combine(creds, "db-password"), "s3cret\n");
        var before = Environment.GetEnvironmentVariable(Credentials.DirectoryVariable);
        try
        {
            Environment.SetEnvironmentVariable(Credentials.DirectoryVariable, creds);
            var (settings, errors) = Parse(dir, "", "  passwordFile: credential:db-password");
            Assert.That(errors.All, Is.Empty);
            Assert.That(settings!.Database.PasswordFile, Is.EqualTo(Path.Combine(creds, "db-password")));

            var (_, missing) = Parse(dir, "", "  passwordFile: credential:other");
            Assert.That(missing.All.Single().Message, Does.Contain($"'{Path.Combine(creds, "other")}' named by 'passwordFile' does not exist"));

            var (_, bad) = Parse(dir, "", "  passwordFile: credential:../etc/shadow");
            Assert.That(bad.All.Single().Message, Does.Contain("does not name a systemd credential"));

            Environment.SetEnvironmentVariable(Credentials.DirectoryVariable, null);
            var (_, outside) = Parse(dir, "", "  passwordFile: credential:db-password");
            Assert.That(outside.All.Single().Message, Does.Contain("$CREDENTIALS_DIRECTORY is not set").And.Contain("LoadCredential=db-password:"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(Credentials.DirectoryVariable, before);
        }
    }

    [Test]
    public void The_log_format_option_wins_over_the_environment_which_wins_over_the_file()
    {
        var before = Environment.GetEnvironmentVariable(LoggingSettings.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(LoggingSettings.EnvironmentVariable, null);
            Assert.That(OperationsSettingsParser.Effective(false, new LoggingSettings(LogFormat.Json)), Is.EqualTo(LogFormat.Json));
            Environment.SetEnvironmentVariable(LoggingSettings.EnvironmentVariable, "text");
            Assert.That(OperationsSettingsParser.Effective(false, new LoggingSettings(LogFormat.Json)), Is.EqualTo(LogFormat.Text));
            Assert.That(OperationsSettingsParser.Effective(true, new LoggingSettings(LogFormat.Text)), Is.EqualTo(LogFormat.Json));
        }
        finally
        {
            Environment.SetEnvironmentVariable(LoggingSettings.EnvironmentVariable, before);
        }
    }
}
