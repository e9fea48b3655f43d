using System.CommandLine;
using System.Text.Json;
using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Stages;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline policy check [FILE...]</c> and <c>pipeline policy test --policy P [--profile NAME] PATH [--json]</c>:
/// the security team's tools to validate scan policies and to try one on a folder or archive
/// without running a pipeline.
/// </summary>
public static class PolicyCommands
{
    public static Command Create(Option<string?> configOption, TextWriter stdout, TextWriter stderr)
    {
        var policy = new Command("policy", "validate scan policies and try them on files");

        var files = new Argument<string[]>("file") { Description = "policy files (default: every file in <pipelines>/policies)", Arity = ArgumentArity.ZeroOrMore };
        var check = new Command("check", "validate scan policies; every error with file, line and a hint");
        check.Arguments.Add(files);
        check.SetAction((p, _) => Task.FromResult(Check(p.GetValue(files) ?? [], p.GetValue(configOption), stdout, stderr)));
        policy.Subcommands.Add(check);

        var policyOption = new Option<string>("--policy") { Description = "policy name (in <pipelines>/policies) or a policy file", Required = true };
        var profileOption = new Option<string>("--profile") { Description = "profile to apply", DefaultValueFactory = _ => "normal" };
        var clamdOption = new Option<string[]>("--clamd") { Description = "clamd endpoint(s), tcp://host:port or unix:///path (default: from the engine configuration)" };
        var clamdConfigOption = new Option<string?>("--clamd-config") { Description = "clamd's configuration file, to read its scan limits (default: from the engine configuration)" };
        var parallelOption = new Option<int>("--parallel") { Description = "parallel scans", DefaultValueFactory = _ => 4 };
        var jsonOption = new Option<bool>("--json") { Description = "print the whole verdict as JSON" };
        var pathArg = new Argument<string>("path") { Description = "a folder (every file below it) or a single file or archive" };
        var test = new Command("test", "scan a folder or archive with a policy, without a pipeline; prints the verdict per file");
        test.Options.Add(policyOption);
        test.Options.Add(profileOption);
        test.Options.Add(clamdOption);
        test.Options.Add(clamdConfigOption);
        test.Options.Add(parallelOption);
        test.Options.Add(jsonOption);
        test.Arguments.Add(pathArg);
        test.SetAction((p, ct) => TestAsync(p.GetValue(policyOption)!, p.GetValue(profileOption)!, p.GetValue(pathArg)!, p.GetValue(clamdOption) ?? [],
            p.GetValue(clamdConfigOption), p.GetValue(parallelOption), p.GetValue(jsonOption), p.GetValue(configOption), stdout, stderr, ct));
        policy.Subcommands.Add(test);
        return policy;
    }

    /// <summary>Validates the given files (or every policy of the configured pipelines folder). 0 all valid, 1 errors, 2 nothing to check.</summary>
    public static int Check(IReadOnlyList<string> files, string? config, TextWriter stdout, TextWriter stderr)
    {
        var errors = new ConfigErrors();
        var policies = new List<ScanPolicy>();
        try
        {
            if (files.Count == 0)
            {
                var settings = EngineSettingsLoader.Load(PipelineCli.ResolveConfig(config));
                var dir = Path.Combine(settings.PipelinesDir, ScanPolicyLoader.FolderName);
                if (!Directory.Exists(dir))
                {
                    stderr.WriteLine($"SCAN-POLICY-INVALID: no policies folder {dir}");
                    return PipelineCli.ConfigError;
                }

                policies.AddRange(ScanPolicyLoader.CheckFolder(dir, errors));
            }
            else
            {
                foreach (var f in files)
                {
                    if (!File.Exists(f)) errors.Add(f, 0, 0, "policy file not found");
                    else if (ScanPolicyLoader.Parse(f, File.ReadAllBytes(f), errors) is { } p) policies.Add(p);
                }
            }
        }
        catch (ConfigurationException e)
        {
            stderr.WriteLine($"{e.Code}: {e.Message}");
            return PipelineCli.ConfigError;
        }

        foreach (var p in policies)
            stdout.WriteLine($"OK {p.Name} {p.Version} profiles: {string.Join(", ", p.Profiles.Keys)}; {p.Exceptions.Count} exception(s)");
        foreach (var e in errors.All) stderr.WriteLine(e.ToString());
        if (errors.Any) stderr.WriteLine($"{PolicyErrors.BadPolicy}: {errors.All.Count} error(s) in scan policies");
        return errors.Any ? PipelineCli.Rejected : PipelineCli.Ok;
    }

    private static Task<int> TestAsync(string policyRef, string profile, string path, string[] clamd, string? clamdConfig, int parallel, bool json, string? config,
        TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        return PipelineCli.Guard(stderr, async () =>
        {
            EngineSettings? settings = null;
            string policyFile;
            if (File.Exists(policyRef)) policyFile = policyRef;
            else
            {
                settings = EngineSettingsLoader.Load(PipelineCli.ResolveConfig(config));
                policyFile = ScanPolicyLoader.PathOf(settings.PipelinesDir, policyRef);
            }

            var policy = ScanPolicyLoader.Load(policyFile);
            var endpoints = clamd.Length > 0
                ? clamd.Select(ClamdEndpoint.Parse).ToList()
                : (settings ??= EngineSettingsLoader.Load(PipelineCli.ResolveConfig(config))).Clamd.Endpoints.Select(ClamdEndpoint.Parse).ToList();
            // What clamd really scans: from its configuration file, never assumed.
            ClamdLimits limits;
            if (clamdConfig is not null)
            {
                var problems = new List<ClamdLimits.Problem>();
                var read = ClamdLimits.Load(clamdConfig, problems);
                if (read is null)
                {
                    foreach (var pr in problems) stderr.WriteLine($"{clamdConfig}:{pr.Line}: {pr.Message}");
                    return PipelineCli.ConfigError;
                }
                limits = read;
            }
            else limits = (settings ?? EngineSettingsLoader.Load(PipelineCli.ResolveConfig(config))).Clamd.Limits;

            string root;
            List<string> rels;
            if (Directory.Exists(path))
            {
                root = Path.GetFullPath(path);
                // Links are listed (the scanner rejects them), never followed out of the folder.
                rels = Pipeline.Checkup.Checksums.FileTree.Enumerate(root)
                    .Where(e => e is FileInfo || e.LinkTarget is not null)
                    .Select(e => Path.GetRelativePath(root, e.FullName).Replace('\\', '/'))
                    .Order(StringComparer.Ordinal).ToList();
            }
            else if (File.Exists(path))
            {
                root = Path.GetDirectoryName(Path.GetFullPath(path))!;
                rels = [Path.GetFileName(path)];
            }
            else
            {
                stderr.WriteLine($"SCAN-PATH: '{path}' is neither a folder nor a file");
                return PipelineCli.ConfigError;
            }

            using var pool = new ClamdPool(endpoints, new ClamdPoolOptions { Parallelism = Math.Clamp(parallel, 1, 64) }, TimeProvider.System);
            var verdict = await new PolicyScanner(pool, limits, TimeProvider.System).ScanAsync(root, rels, policy, profile, ct).ConfigureAwait(false);
            if (json) stdout.WriteLine(JsonSerializer.Serialize(ScanStep.ToJson(verdict), ScanStep.JsonOptions));
            else PrintTable(verdict, stdout);
            return verdict.Decision == ScanDecision.Accept ? PipelineCli.Ok : PipelineCli.Rejected;
        });
    }

    /// <summary>The per-file table printed by <c>policy test</c>.</summary>
    public static void PrintTable(ScanVerdict v, TextWriter o)
    {
        o.WriteLine($"policy {v.PolicyName} ({v.PolicyVersion}) profile {v.Profile}; scanner {v.ClamdVersion}");
        var width = Math.Clamp(v.Files.Count == 0 ? 4 : v.Files.Max(f => f.Path.Length), 4, 60);
        o.WriteLine($"{"FILE".PadRight(width)}  {"OUTCOME",-10} {"TYPE",-9} {"SHA256",-16} REASON");
        foreach (var f in v.Files)
            o.WriteLine($"{f.Path.PadRight(width)}  {f.Outcome.ToString().ToLowerInvariant(),-10} {FileTypes.Name(f.Type),-9} {(f.Sha256 is null ? "-" : f.Sha256[..12] + "..."),-16} {f.Reason}");
        foreach (var p in v.Problems) o.WriteLine($"problem: {p}");
        o.WriteLine($"decision: {v.Decision.ToString().ToUpperInvariant()} ({v.Files.Count} file(s), {v.Findings.Count()} finding(s))");
    }
}
