using System.CommandLine;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;

namespace Pipeline.Engine.Cli;

/// <summary>
/// The <c>pipeline</c> command line. Exit codes: 0 success (every new delivery accepted), 1 a
/// delivery was rejected or a check failed, 2 usage or configuration error (unknown command,
/// option or pipeline), 3 the engine could not do its work (database, network, a delivery left
/// pending by an outage of our infrastructure, cancelled).
/// </summary>
public static class PipelineCli
{
    public const int Ok = 0, Rejected = 1, ConfigError = 2, Failure = 3;

    public static int Run(string[] args) => RunAsync(args, Console.Out, Console.Error).GetAwaiter().GetResult();

    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr)
    {
        // The conformance suite's protocol is fixed; it is parsed by its own command.
        if (args.Length > 0 && args[0] == "verify-bundle")
            return VerifyBundleCommand.Run(args[1..], stdout, stderr);

        var configOption = new Option<string?>("--config", "-c")
        {
            Description = "engine configuration file (default: $PIPELINE_CONFIG, ./engine.yaml, /etc/pipeline/engine.yaml)",
            Recursive = true,
        };
        var jsonLogs = new Option<bool>("--log-json") { Description = "write logs as compact JSON (stderr)", Recursive = true };

        var root = new RootCommand("pipeline: secure software-delivery pipeline engine (verify, scan, build and record supplier deliveries)");
        root.Options.Add(configOption);
        root.Options.Add(jsonLogs);

        var pipelineArg = new Argument<string>("pipeline") { Description = "name of the pipeline definition" };
        var run = new Command("run", "run one pass of a pipeline now: fetch new release tags and take each through every stage");
        run.Arguments.Add(pipelineArg);
        run.SetAction((p, ct) => Guard(stderr, async () =>
        {
            await using var engine = await Start(p.GetValue(configOption), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var report = await engine.Runner.RunOnceAsync(engine.Pipeline(p.GetValue(pipelineArg)!), ct).ConfigureAwait(false);
            Print(report, stdout);
            // Approved promotions that did not complete (crash, registry outage) finish now, once each.
            foreach (var done in await engine.Lifecycle.ResumeAsync(report.Pipeline, ct).ConfigureAwait(false))
                stdout.WriteLine($"promotion of {done.Tag} ({done.DeliveryId}) into {done.Stage} completed");
            return ExitCodeOf(report);
        }, UsageErrors));
        root.Subcommands.Add(run);

        var deliveryArg = new Argument<Guid>("delivery-id") { Description = "id of a pending delivery" };
        var retry = new Command("retry", "make a pending delivery (stopped by an outage of our infrastructure) due now; the next pass of its pipeline retries it");
        retry.Arguments.Add(deliveryArg);
        retry.SetAction((p, ct) => Guard(stderr, async () =>
        {
            await using var engine = await Start(p.GetValue(configOption), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var row = await engine.Ledger.RetryNowAsync(p.GetValue(deliveryArg), ct).ConfigureAwait(false);
            stdout.WriteLine($"delivery {row.Id} ({row.Pipeline} {row.Tag}, {row.ReasonCode}) is due now; 'pipeline run {row.Pipeline}' or the daemon's next pass retries it");
            return Ok;
        }, e => e is PipelineException { Code: "RETRY-NOT-PENDING" or "RETRY-NOT-FOUND" } ? Rejected : null));
        root.Subcommands.Add(retry);

        var daemon = new Command("daemon", "run as a daemon: every pipeline on its schedule until stopped (SIGTERM / Ctrl-C)");
        daemon.SetAction((p, ct) => Guard(stderr, async () =>
        {
            await using var engine = await Start(p.GetValue(configOption), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            return await Daemon.RunAsync(engine, ct).ConfigureAwait(false);
        }));
        root.Subcommands.Add(daemon);

        var trigger = new Command("trigger", "ask the running daemons (the cluster) for a pass of a pipeline now; exactly one node runs it");
        trigger.Arguments.Add(pipelineArg);
        trigger.SetAction((p, ct) => Guard(stderr, async () =>
        {
            await using var engine = await Start(p.GetValue(configOption), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var key = await Cluster.ClusterClient.RunNowAsync(engine, p.GetValue(pipelineArg)!, Environment.UserName, ct).ConfigureAwait(false);
            stdout.WriteLine($"pass of {p.GetValue(pipelineArg)} requested from cluster {engine.Settings.Cluster.Name} (trigger {key.Name})");
            return Ok;
        }));
        root.Subcommands.Add(trigger);

        var check = new Command("check", "validate the engine configuration and every pipeline definition; report all errors with file and line");
        check.SetAction((p, _) => Guard(stderr, () =>
        {
            var settings = EngineSettingsLoader.Load(ResolveConfig(p.GetValue(configOption)));
            var defs = PipelineDefinitionLoader.LoadFolder(settings.PipelinesDir, checkEnvironment: true);
            Tenancy.TenancyValidator.Validate(settings, defs);
            WorkFolder.EnsureWritable(settings);
            stdout.WriteLine($"configuration OK: {settings.SourceFile}, {defs.Count} pipeline(s): {string.Join(", ", defs.Select(d => d.Name))}");
            return Task.FromResult(Ok);
        }));
        root.Subcommands.Add(check);

        root.Subcommands.Add(LedgerCommand.Create(configOption, jsonLogs, stdout, stderr));

        var rootfs = new Option<string>("--rootfs") { Description = "folder whose files make the base image", Required = true };
        var repository = new Option<string>("--repository") { Description = "repository in the internal registry, e.g. base/busybox", Required = true };
        var tag = new Option<string>("--tag") { Description = "tag to push", DefaultValueFactory = _ => "latest" };
        var baseImage = new Command("base-image", "build a base image from a folder (deterministically, without Docker) and push it to the internal registry; prints repository@digest");
        baseImage.Options.Add(rootfs);
        baseImage.Options.Add(repository);
        baseImage.Options.Add(tag);
        baseImage.SetAction((p, ct) => Guard(stderr, async () =>
        {
            var settings = EngineSettingsLoader.Load(ResolveConfig(p.GetValue(configOption)));
            var reference = await BaseImageCommand.RunAsync(settings, p.GetValue(rootfs)!, p.GetValue(repository)!, p.GetValue(tag)!, ct).ConfigureAwait(false);
            stdout.WriteLine(reference);
            return Ok;
        }));
        root.Subcommands.Add(baseImage);

        root.Subcommands.Add(PolicyCommands.Create(configOption, stdout, stderr));
        root.Subcommands.Add(QuarantineCommands.Create(configOption, stdout, stderr));
        root.Subcommands.Add(ImageCommands.Create(stdout, stderr));
        root.Subcommands.Add(AuditCommands.Create(configOption, jsonLogs, stdout, stderr));
        root.Subcommands.Add(PortalCommands.Create(configOption, jsonLogs, stdout, stderr));
        root.Subcommands.Add(ReportCommand.Create(configOption, stdout, stderr));
        foreach (var command in LifecycleCommands.Create(configOption, jsonLogs, stdout, stderr)) root.Subcommands.Add(command);

        var verifyBundle = new Command("verify-bundle", "verify a Sigstore bundle offline (sigstore-conformance client protocol)");
        root.Subcommands.Add(verifyBundle);

        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0 && parsed.Action is not System.CommandLine.Help.HelpAction)
        {
            foreach (var error in parsed.Errors) stderr.WriteLine($"CLI-USAGE: {error.Message}");
            stderr.WriteLine("'pipeline --help' lists the commands and options");
            return ConfigError;
        }

        // SIGTERM/SIGINT cancel the command's token; a cancelled run records its delivery as pending, which may take a moment.
        return await parsed.InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr, ProcessTerminationTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
    }

    /// <summary>1 when a delivery was rejected, else 3 when one is still pending (an outage of ours; retried later), else 0.</summary>
    public static int ExitCodeOf(RunReport report) => report.AnyRejected ? Rejected : report.AnyPending ? Failure : Ok;

    /// <summary>An unknown pipeline name is a usage error (2).</summary>
    internal static int? UsageErrors(Exception e) => e is PipelineException { Code: "RUN-UNKNOWN-PIPELINE" } ? ConfigError : null;

    internal static async Task<PipelineEngine> Start(string? config, bool json, CancellationToken ct)
    {
        var path = ResolveConfig(config);
        var log = Logging.Create(Logging.FormatFor(json, path), null);
        return await PipelineEngine.StartAsync(path, TimeProvider.System, log, ct).ConfigureAwait(false);
    }

    internal static string ResolveConfig(string? option)
    {
        if (option is not null) return option;
        if (Environment.GetEnvironmentVariable("PIPELINE_CONFIG") is { Length: > 0 } env) return env;
        return File.Exists("engine.yaml") ? "engine.yaml" : "/etc/pipeline/engine.yaml";
    }

    /// <summary>
    /// Runs a command body and turns every failure into its stable code and message on stderr and
    /// an exit code: configuration errors 2, cancellation and other failures 3, unless
    /// <paramref name="exitCodeFor"/> says otherwise for a given exception.
    /// </summary>
    internal static async Task<int> Guard(TextWriter stderr, Func<Task<int>> body, Func<Exception, int?>? exitCodeFor = null)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (ConfigurationException e)
        {
            stderr.WriteLine($"{e.Code}: {e.Message}");
            return ConfigError;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("cancelled");
            return Failure;
        }
        catch (Exception e)
        {
            var (code, message) = ErrorCodes.Describe(e);
            stderr.WriteLine($"{code}: {message}");
            return exitCodeFor?.Invoke(e) ?? Failure;
        }
    }

    internal static void Print(RunReport report, TextWriter o)
    {
        o.WriteLine($"pipeline {report.Pipeline}: {report.Deliveries.Count} new delivery(ies), {report.Skipped.Count} already processed" +
                    (report.Waiting.Count > 0 ? $", {report.Waiting.Count} waiting for a retry ({string.Join(", ", report.Waiting)})" : ""));
        foreach (var d in report.Deliveries)
        {
            o.WriteLine();
            o.WriteLine($"delivery {d.DeliveryId} tag {d.Tag}: {d.Status.ToString().ToUpperInvariant()}" + (d.ReasonCode is null ? "" : $" ({d.ReasonCode})") +
                        (d.Attempt > 1 ? $" attempt {d.Attempt}" : ""));
            if (d.NextAttemptAt is { } due)
                o.WriteLine($"  not the delivery's fault: retried by the next pass after {due:yyyy-MM-ddTHH:mm:ssZ}, or now with 'pipeline retry {d.DeliveryId}'");
            foreach (var e in d.Entries)
            {
                var r = e.Record;
                var detail = r.Verdict == Verdict.Passed ? $"{r.InputDigest} -> {r.OutputDigest}" : $"{r.ReasonCode}: {r.Reason}";
                o.WriteLine($"  {r.Stage,-8} {(r.Verdict == Verdict.Passed ? "passed" : "FAILED"),-7} {detail}");
            }

            foreach (var image in d.Images) o.WriteLine($"image: {image}");
            if (d.QuarantineDir is not null) o.WriteLine($"quarantine: {d.QuarantineDir}");
            o.WriteLine("ledger:");
            foreach (var e in d.Entries) PrintEntry(e, o);
        }
    }

    private static void PrintEntry(LedgerEntry e, TextWriter o)
    {
        var r = e.Record;
        o.WriteLine($"  #{e.Sequence} {e.RecordedAt:yyyy-MM-ddTHH:mm:ss.ffffffZ} {r.Pipeline} {r.DeliveryId} {r.Stage} {(r.Verdict == Verdict.Passed ? "passed" : "failed")}" +
                    (r.ReasonCode is null ? "" : $" {r.ReasonCode}") + $" hash={e.EntryHash} prev={e.PreviousHash}");
    }
}
