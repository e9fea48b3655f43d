using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

public class DaemonAndCliTests : DeliveryFixture
{
    [Test]
    public async Task The_daemon_runs_each_pipeline_on_its_schedule_and_stops_gracefully()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        // Every second: the scheduler must still never run two passes of one pipeline at once.
        var def = Path.Combine(s.Root, "pipelines", s.Name + ".yaml");
        File.WriteAllText(def, File.ReadAllText(def).Replace("supplier: Test Supplier GmbH", "supplier: Test Supplier GmbH\nschedule: \"* * * * * ?\""));
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");

        var sink = new CapturingSink();
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default);
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var daemon = Daemon.RunAsync(engine, cts.Token);

        DeliveryRow? accepted = null;
        while (!cts.IsCancellationRequested && accepted is null)
        {
            await Task.Delay(250);
            accepted = (await engine.Ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).FirstOrDefault(d => d.Status == DeliveryStatus.Accepted);
        }

        Assert.That(accepted, Is.Not.Null, "the scheduled pass should have accepted the delivery");
        await Task.Delay(1500); // a few more firings: they must find nothing new
        await cts.CancelAsync();
        var finished = await Task.WhenAny(daemon, Task.Delay(TimeSpan.FromSeconds(30)));
        Assert.That(finished, Is.SameAs(daemon), "the daemon must stop when asked");
        Assert.That(await daemon, Is.EqualTo(0));
        Assert.That(await engine.Ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default), Has.Count.EqualTo(1), "one delivery, however often the schedule fired");
        Assert.That(sink.Lines, Has.Some.Contains("Daemon started with 1 scheduled pipelines"));
        Assert.That(sink.Lines, Has.None.Contains("RUN-BUSY"), "overlapping passes of one pipeline must not even be attempted");
    }

    [Test]
    public async Task Logs_and_output_of_a_run_never_contain_the_git_password()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var password = File.ReadAllText(TestServices.Require("PIPELINE_GIT_PASSWORD_FILE")).Trim();

        var sink = new CapturingSink();
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default);
        var report = await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default);
        var output = new StringWriter();
        PipelineCli.Print(report, output);

        Assert.That(report.Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));
        Assert.That(sink.Lines, Is.Not.Empty);
        Assert.That(sink.Lines, Has.None.Contains(password));
        Assert.That(output.ToString(), Does.Not.Contain(password));
        var entries = await engine.Ledger.ReadAsync(null, default);
        Assert.That(entries.SelectMany(e => e.Record.Evidence.Values), Has.None.Contains(password));
    }

    [Test]
    public async Task The_run_command_prints_every_stage_the_image_and_the_ledger_entries()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var rc = await PipelineCli.RunAsync(["run", s.Name, "--config", s.ConfigPath], stdout, stderr);
        var text = stdout.ToString();
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), stderr.ToString());
        foreach (var stage in new[] { "fetch", "verify", "scan", "publish", "build", "push" })
            Assert.That(text, Does.Match($@"\n  {stage} +passed "));
        Assert.That(text, Does.Match($@"\nimage: {System.Text.RegularExpressions.Regex.Escape(Harness.Registry)}/apps/{s.Name}/app@sha256:[0-9a-f]{{64}}\n"));
        Assert.That(text, Does.Contain("ledger:").And.Contain("hash=sha256:"));

        // And the ledger command shows the delivery's rows, each proven by its signed log entry.
        var id = System.Text.RegularExpressions.Regex.Match(text, @"delivery ([0-9a-f-]{36}) tag v1\.0\.0").Groups[1].Value;
        stdout = new StringWriter();
        rc = await PipelineCli.RunAsync(["ledger", "--delivery", id, "--config", s.ConfigPath], stdout, stderr);
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), stderr.ToString());
        var rows = stdout.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(rows, Has.Length.EqualTo(6));
        Assert.That(rows, Has.All.Match(@"^  #\d+ .* \[signed #\d+\] hash=sha256:"));
    }

    [Test]
    public async Task Configuration_errors_are_reported_all_together_with_file_and_line_before_anything_starts()
    {
        var s = Harness.NewScenario();
        File.WriteAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), $"""
            name: {s.Name}
            supplier: X
            source:
              url: http://127.0.0.1:1/none.git
              tagPattern: '^v'
              credentialsFile: /nonexistent/cred
            signers: []
            publish: {"{"}repository: Bad Repo{"}"}
            images: {"{"}repositoryPrefix: apps/x, allowedBaseImages: []{"}"}
            typo: 1
            """);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var rc = await PipelineCli.RunAsync(["check", "--config", s.ConfigPath], stdout, stderr);
        var err = stderr.ToString();
        Assert.That(rc, Is.EqualTo(PipelineCli.ConfigError));
        Assert.That(err, Does.StartWith("CFG-INVALID: 5 configuration error(s):"));
        Assert.That(err, Does.Contain($"{s.Name}.yaml:6:").And.Contain("/nonexistent/cred"));
        Assert.That(err, Does.Contain("'signers' must not be empty"));
        Assert.That(err, Does.Contain($"{s.Name}.yaml:8:").And.Contain("not a valid repository path"));
        Assert.That(err, Does.Contain("'images.allowedBaseImages' must not be empty"));
        Assert.That(err, Does.Contain($"{s.Name}.yaml:10:1: unknown key 'typo'"));

        // The daemon refuses to start on the same errors.
        rc = await PipelineCli.RunAsync(["daemon", "--config", s.ConfigPath], stdout, stderr = new StringWriter());
        Assert.That((rc, stderr.ToString()), Is.EqualTo((PipelineCli.ConfigError, err)));
    }

    [Test]
    public async Task An_unknown_pipeline_name_is_a_clear_error_listing_the_known_ones()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        var stderr = new StringWriter();
        var rc = await PipelineCli.RunAsync(["run", "no-such-pipeline", "--config", s.ConfigPath], new StringWriter(), stderr);
        Assert.That(rc, Is.EqualTo(PipelineCli.ConfigError));
        Assert.That(stderr.ToString(), Does.StartWith("RUN-UNKNOWN-PIPELINE: no pipeline named 'no-such-pipeline'").And.Contain($"known: {s.Name}"));
    }

    [Test]
    public async Task A_second_run_of_a_pipeline_that_is_running_is_refused_and_changes_nothing()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        // Another engine process holds the pipeline's lock.
        await using (var held = await engine.Ledger.TryLockPipelineAsync(s.Name, default))
        {
            Assert.That(held, Is.Not.Null);
            await using var other = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
            var e = (await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => other.Runner.RunOnceAsync(other.Pipeline(s.Name), default)))!;
            Assert.That(e.Code, Is.EqualTo("RUN-BUSY"));
            Assert.That(await engine.Ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default), Is.Empty, "the refused run recorded nothing");
        }

        Assert.That((await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));
    }

    [Test]
    public async Task An_unreachable_database_is_reported_with_a_code()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        File.WriteAllText(s.ConfigPath, File.ReadAllText(s.ConfigPath).Replace(Harness.Database.ConnectionString, "Host=127.0.0.1;Port=1;Username=x;Database=y;Timeout=2"));
        var stderr = new StringWriter();
        var rc = await PipelineCli.RunAsync(["run", s.Name, "--config", s.ConfigPath], new StringWriter(), stderr);
        Assert.That(rc, Is.EqualTo(PipelineCli.Failure));
        Assert.That(stderr.ToString(), Does.StartWith("DB-UNREACHABLE: cannot reach the ledger database"));
    }
}
