using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>What the README promises about validation and exit codes: <c>check</c> catches what the daemon would refuse.</summary>
public class ConfigAndExitCodeTests : DeliveryFixture
{
    [Test]
    public async Task A_schedule_that_never_fires_fails_check_and_the_daemon_with_file_and_line_not_a_stack_trace()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        var def = Path.Combine(s.Root, "pipelines", s.Name + ".yaml");
        File.WriteAllText(def, File.ReadAllText(def).Replace("supplier: Test Supplier GmbH", "supplier: Test Supplier GmbH\nschedule: \"0 0 0 31 2 ?\""));

        foreach (var command in new[] { "check", "daemon" })
        {
            var (rc, _, stderr) = await CliAsync(command, "--config", s.ConfigPath);
            Assert.That(rc, Is.EqualTo(PipelineCli.ConfigError), $"{command}: {stderr}");
            Assert.That(stderr, Does.StartWith("CFG-INVALID").And.Contain($"{def}:3:").And.Contain("'schedule' never fires: '0 0 0 31 2 ?'"));
            Assert.That(stderr, Does.Not.Contain("   at "), "no stack trace");
        }
    }

    [Test]
    public async Task A_read_only_work_folder_is_named_with_a_code_before_the_database_is_touched()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        var work = Path.Combine(s.Root, "work");
        using var readOnly = new SmallTmpfs(work, "1m");
        Shell.Run("mount", ["-o", "remount,ro", work]).EnsureSuccess("remount read-only");

        foreach (var command in new[] { new[] { "check" }, new[] { "run", s.Name } })
        {
            var (rc, _, stderr) = await CliAsync([.. command, "--config", s.ConfigPath]);
            Assert.That(rc, Is.EqualTo(PipelineCli.Failure), stderr);
            Assert.That(stderr, Does.StartWith($"{WorkFolder.NotWritable}: the work folder '{work}' (workDir in {s.ConfigPath}) is not writable"));
        }

        await using var ds = Harness.Database.DataSource();
        await using var cmd = ds.CreateCommand("select to_regclass('public.schema_migrations') is null");
        Assert.That(await cmd.ExecuteScalarAsync(), Is.True, "the schema was not migrated for an engine that cannot work");
    }

    [TestCase("no-such-command")]
    [TestCase("run")]
    [TestCase("run", "a", "b")]
    [TestCase("ledger", "--no-such-option")]
    public async Task Usage_errors_exit_2(params string[] args)
    {
        var (rc, _, stderr) = await CliAsync(args);
        Assert.That(rc, Is.EqualTo(PipelineCli.ConfigError), stderr);
        Assert.That(stderr, Does.StartWith("CLI-USAGE: "));
    }

    private static async Task<(int Rc, string Stdout, string Stderr)> CliAsync(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var rc = await PipelineCli.RunAsync(args, stdout, stderr);
        return (rc, stdout.ToString(), stderr.ToString());
    }
}
