using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline audit …</c>: the auditor's tools over the transparency log (trace, verify, export,
/// verify-bundle, query, checkpoint). The logic lives in <see cref="AuditService"/> and
/// <see cref="AuditBundleVerifier"/>; this only parses options and prints.
/// </summary>
public static class AuditCommands
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static Command Create(Option<string?> config, Option<bool> jsonLogs, TextWriter stdout, TextWriter stderr)
    {
        var audit = new Command("audit", "auditor tools: trace a delivery through signed attestations, verify the transparency log, export and verify offline bundles");
        var json = new Option<bool>("--json") { Description = "print JSON instead of a table" };
        var keyFiles = new Option<string[]>("--key")
        {
            Description = "trusted engine public key (PEM); repeatable. Without it: the configured keys (attestation.verificationKeys and the public half of the signing key)",
            AllowMultipleArgumentsPerToken = true,
        };
        Task<AuditSession> Open(ParseResult p, CancellationToken ct) => OpenSession(p.GetValue(config), p.GetValue(jsonLogs), p.GetValue(keyFiles) ?? [], ct);
        var tenant = TenantOption();

        // trace
        var what = new Argument<string>("what") { Description = "image digest (sha256:… or registry/repo@sha256:…), delivery id, or tag name" };
        var trace = new Command("trace", "follow deliveries stage by stage; every link is checked: envelope signature, inclusion in the latest checkpoint, digests linking the stages");
        trace.Arguments.Add(what);
        trace.Options.Add(json);
        trace.Options.Add(keyFiles);
        trace.Options.Add(tenant);
        trace.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var session = await Open(p, ct).ConfigureAwait(false);
            var scope = AuditScope.FromOption(session.Settings.Tenants, p.GetValue(tenant));
            var result = await session.Audit.TraceAsync(p.GetValue(what)!, scope, ct).ConfigureAwait(false);
            if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(result, Json));
            else PrintTrace(result, stdout);
            if (result.Deliveries.Count == 0)
            {
                stderr.WriteLine($"AUDIT-NOT-FOUND: nothing in the log matches '{p.GetValue(what)}'");
                return PipelineCli.Rejected;
            }

            return result.Ok ? PipelineCli.Ok : PipelineCli.Rejected;
        }, NoKeys));
        audit.Subcommands.Add(trace);

        // verify
        var since = new Option<string?>("--since-checkpoint")
        {
            Description = "a checkpoint note you kept earlier: the log must be a consistent extension of it (default: latest.note in ledger.checkpointDir, when readable)",
        };
        var verify = new Command("verify", "verify the whole log: every entry's signature, leaf hash and columns, every tree node, every checkpoint, every ledger row, the append-only guards; exit 1 naming the first problem");
        verify.Options.Add(since);
        verify.Options.Add(json);
        verify.Options.Add(keyFiles);
        verify.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var session = await Open(p, ct).ConfigureAwait(false);
            var sinceFile = p.GetValue(since) ?? KeptCheckpoint(session.Settings.Ledger.CheckpointDir);
            var sinceNote = sinceFile is not null ? await File.ReadAllTextAsync(sinceFile, ct).ConfigureAwait(false) : null;
            var result = await session.Audit.VerifyLogAsync(sinceNote, ct).ConfigureAwait(false);
            if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(result, Json));
            else
            {
                stdout.WriteLine($"log: {result.TreeSize} entries, root {result.RootHex}");
                stdout.WriteLine($"checked: {result.LeavesChecked} envelopes and their columns, {result.NodesChecked} tree nodes, {result.CheckpointsChecked} checkpoints, {result.LedgerEntriesChecked} ledger entries against their signed records" +
                                 (result.SinceCheckpoint is { } s ? $", consistent with the checkpoint at size {s.TreeSize} from {sinceFile}" : ""));
                if (result.Guards is { } g) PrintGuards(g, stdout);
            }

            if (result.Ok)
            {
                if (!p.GetValue(json)) stdout.WriteLine("log verified: OK");
                return PipelineCli.Ok;
            }

            foreach (var problem in result.Problems) stderr.WriteLine(problem.ToString());
            stderr.WriteLine($"LOG-TAMPERED: first problem: {result.FirstProblem}");
            return PipelineCli.Rejected;
        }, NoKeys));
        audit.Subcommands.Add(verify);

        // export
        var digest = new Argument<string>("image") { Description = "image digest (sha256:…) or registry/repo@sha256:…" };
        var output = new Option<string>("--output", "-o") { Description = "bundle file to write", Required = true };
        var export = new Command("export", "write a self-contained bundle (envelopes, inclusion proofs, checkpoint, public keys) for an image");
        export.Arguments.Add(digest);
        export.Options.Add(output);
        export.Options.Add(keyFiles);
        export.Options.Add(tenant);
        export.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var session = await Open(p, ct).ConfigureAwait(false);
            var scope = AuditScope.FromOption(session.Settings.Tenants, p.GetValue(tenant));
            var bundle = await session.Audit.ExportAsync(p.GetValue(digest)!, scope, ct).ConfigureAwait(false);
            await File.WriteAllBytesAsync(p.GetValue(output)!, bundle.ToJsonBytes(), ct).ConfigureAwait(false);
            stdout.WriteLine($"bundle written: {p.GetValue(output)} ({bundle.Entries.Count} entries, subject {bundle.Subject}, {scope})");
            return PipelineCli.Ok;
        }, e => e is PipelineException { Code: "AUDIT-NOT-FOUND" or AuditService.ScopeUnverifiable } ? PipelineCli.Rejected : NoKeys(e)));
        audit.Subcommands.Add(export);

        // verify-bundle (no database, no configuration)
        var file = new Argument<string>("bundle") { Description = "bundle file from 'pipeline audit export'" };
        var origin = new Option<string?>("--origin") { Description = "expected log origin line of the checkpoint" };
        var verifyBundle = new Command("verify-bundle", "verify an exported bundle offline: checkpoint signature, every envelope's signature and inclusion proof, stage links");
        verifyBundle.Arguments.Add(file);
        verifyBundle.Options.Add(keyFiles);
        verifyBundle.Options.Add(origin);
        verifyBundle.Options.Add(json);
        verifyBundle.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            var bundle = AuditBundle.Parse(await File.ReadAllBytesAsync(p.GetValue(file)!, ct).ConfigureAwait(false));
            var keys = p.GetValue(keyFiles) is { Length: > 0 } k ? new KeyRing(k.Select(VerificationKey.FromPemFile)) : null;
            var result = AuditBundleVerifier.Verify(bundle, keys, p.GetValue(origin));
            if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(result, Json));
            else
            {
                stdout.WriteLine($"subject: {result.Subject}");
                stdout.WriteLine(keys is null
                    ? $"keys: only the bundle's own ({string.Join(", ", result.TrustedKeyIds)}), NOT TRUSTED: anyone can make a bundle that verifies with its own keys"
                    : $"trusted keys: {string.Join(", ", result.TrustedKeyIds)}");
                if (result.Checkpoint is { } cp) stdout.WriteLine($"checkpoint: {cp.Origin} size {cp.TreeSize} root {cp.RootHex} (signature OK{(keys is null ? " with the bundle's own key" : "")})");
                PrintSteps(result.Steps, stdout);
            }

            foreach (var problem in result.Problems) stderr.WriteLine(problem.ToString());
            if (!result.Ok) return PipelineCli.Rejected;
            if (keys is null)
            {
                // Consistent, but signed by keys nobody vouched for: never "verified".
                stderr.WriteLine($"BUNDLE-KEY-UNTRUSTED: the bundle is consistent, but its signatures were checked only with the keys it carries itself ({string.Join(", ", result.TrustedKeyIds)}); " +
                                 "pass --key with the engine's published public key to verify who signed it");
                return PipelineCli.Rejected;
            }

            if (!p.GetValue(json)) stdout.WriteLine("bundle verified: OK");
            return PipelineCli.Ok;
        }));
        audit.Subcommands.Add(verifyBundle);

        // query
        var qPipeline = new Option<string?>("--pipeline");
        var qSupplier = new Option<string?>("--supplier");
        var qStage = new Option<string?>("--stage");
        var qVerdict = new Option<string?>("--verdict") { Description = "passed or failed" };
        var qSigner = new Option<string?>("--signer") { Description = "engine key id (hex) that signed the entries" };
        var qDigest = new Option<string?>("--digest") { Description = "entries naming this digest (algorithm:value) as subject or material" };
        var qFrom = new Option<DateTimeOffset?>("--from") { Description = "recorded at or after (ISO 8601)" };
        var qUntil = new Option<DateTimeOffset?>("--until") { Description = "recorded before (ISO 8601)" };
        var qLimit = new Option<int>("--limit") { DefaultValueFactory = _ => 100 };
        var query = new Command("query", "list signed log entries by pipeline, supplier, stage, verdict, signer key, digest and time range");
        foreach (var o in new Option[] { qPipeline, qSupplier, qStage, qVerdict, qSigner, qDigest, qFrom, qUntil, qLimit, json, keyFiles, tenant }) query.Options.Add(o);
        query.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var session = await Open(p, ct).ConfigureAwait(false);
            var scope = AuditScope.FromOption(session.Settings.Tenants, p.GetValue(tenant));
            var records = await session.Audit.QueryAsync(new LeafQuery(
                Pipeline: p.GetValue(qPipeline), Supplier: p.GetValue(qSupplier), Stage: p.GetValue(qStage), Verdict: p.GetValue(qVerdict),
                KeyId: p.GetValue(qSigner), Digest: p.GetValue(qDigest), From: p.GetValue(qFrom), Until: p.GetValue(qUntil), Limit: p.GetValue(qLimit)), scope, ct).ConfigureAwait(false);
            if (p.GetValue(json)) stdout.WriteLine(JsonSerializer.Serialize(records, Json));
            else
            {
                foreach (var r in records)
                    stdout.WriteLine($"#{r.LogIndex,-6} {r.RecordedAt:yyyy-MM-ddTHH:mm:ssZ} {r.Pipeline} {r.Tag} {r.Stage,-8} {r.Verdict,-6} {r.ReasonCode} key={r.KeyId[..16]} {string.Join(" ", r.Subjects.SelectMany(s => s.DigestStrings))}");
                stdout.WriteLine($"{records.Count} entr{(records.Count == 1 ? "y" : "ies")} (signed values; the filters use lookup columns that 'audit verify' checks)");
            }

            return PipelineCli.Ok;
        }, NoKeys));
        audit.Subcommands.Add(query);

        // checkpoint
        var checkpoint = new Command("checkpoint", "sign a checkpoint of the log now, store it and write it to the checkpoint folder; prints the note");
        checkpoint.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            var row = await engine.Ledger.CheckpointAsync(ct).ConfigureAwait(false);
            stdout.Write(row.Note);
            return PipelineCli.Ok;
        }));
        audit.Subcommands.Add(checkpoint);

        // serve
        var urls = new Option<string>("--urls") { Description = "listen URL(s), ';'-separated; loopback only unless --allow-remote", DefaultValueFactory = _ => Api.AuditApiHost.DefaultUrl };
        var allowRemote = new Option<bool>("--allow-remote") { Description = "allow a non-loopback bind (put TLS in front of it)" };
        var serve = new Command("serve", "read-only HTTP API and web page for auditors (tokens from audit.apiTokensFile)");
        serve.Options.Add(urls);
        serve.Options.Add(allowRemote);
        serve.Options.Add(keyFiles);
        serve.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            Api.AuditApiHost.CheckBind(p.GetValue(urls)!, p.GetValue(allowRemote));
            // Read-only like every audit command: no migration, public keys only, no clamd or registry settings.
            // The token file first: without auditors there is nothing to serve, whatever the keys.
            Api.AuditApiServer.LoadTokens(Configuration.EngineSettingsLoader.Load(PipelineCli.ResolveConfig(p.GetValue(config)), Configuration.ConfigScope.Audit));
            await using var session = await Open(p, ct).ConfigureAwait(false);
            await using var server = await Api.AuditApiServer.StartAsync(session, p.GetValue(urls)!, p.GetValue(allowRemote), ct).ConfigureAwait(false);
            stdout.WriteLine($"audit API listening on {string.Join(" ", server.Addresses)}; Ctrl-C stops it");
            try
            {
                await server.WaitForShutdownAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }

            return PipelineCli.Ok;
        }, e => e is PipelineException pe && (pe.Code.StartsWith("API-", StringComparison.Ordinal) || pe.Code == "AUDIT-NO-KEYS") ? PipelineCli.ConfigError : null));
        audit.Subcommands.Add(serve);
        return audit;
    }

    internal static async Task<AuditSession> OpenSession(string? config, bool jsonLogs, IReadOnlyList<string> keyFiles, CancellationToken ct) =>
        await AuditSession.OpenAsync(PipelineCli.ResolveConfig(config), keyFiles, TimeProvider.System, Hosting.Logging.Create(jsonLogs), ct).ConfigureAwait(false);

    /// <summary>No trusted key, or an unknown <c>--tenant</c>, is a usage error (exit 2), not an outage.</summary>
    internal static int? NoKeys(Exception e) => e is PipelineException { Code: "AUDIT-NO-KEYS" or AuditScope.UnknownTenant } ? PipelineCli.ConfigError : null;

    /// <summary><c>--tenant ID</c>: only that tenant's entries (<see cref="AuditScope"/>).</summary>
    internal static Option<string?> TenantOption() => new("--tenant")
    {
        Description = "only this tenant's deliveries (an id from engine.yaml 'tenants:'; unknown: TENANT-UNKNOWN); checkpoints and proofs stay global",
    };

    /// <summary>The engine's own last checkpoint (outside the database), when this user can read it.</summary>
    private static string? KeptCheckpoint(string? dir)
    {
        if (dir is null) return null;
        var path = Path.Combine(dir, CheckpointSigner.LatestFile);
        try
        {
            using var _ = File.OpenRead(path);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void PrintGuards(LedgerGuardReport g, TextWriter o)
    {
        o.WriteLine($"append-only: {g.EnabledTriggers.Count} of {LedgerGuards.ExpectedTriggers.Count} triggers enabled; tables owned by {string.Join(", ", g.Owners)}; " +
                    (g.WriteGrants.Count == 0 ? "no other role may change them" : "ALSO WRITABLE: " + string.Join("; ", g.WriteGrants)));
        o.WriteLine($"note: the owner ({string.Join(", ", g.Owners)}) and superusers ({string.Join(", ", g.Superusers)}) can still disable the triggers; such changes are detected by the checks above, not prevented");
    }

    internal static void PrintTrace(TraceResult result, TextWriter o)
    {
        o.WriteLine(result.Checkpoint is { } cp
            ? $"checkpoint: {cp.Origin} size {cp.TreeSize} root {cp.RootHex} signed by key {cp.KeyId[..16]} (signature OK)"
            : "checkpoint: NONE VERIFIED");
        foreach (var d in result.Deliveries)
        {
            o.WriteLine();
            o.WriteLine($"delivery {d.DeliveryId}  pipeline {d.Pipeline}  supplier {d.Supplier}  tag {d.Tag}: {(d.Ok ? "CHAIN VERIFIED" : "CHAIN BROKEN")}");
            PrintSteps(d.Steps, o);
        }
    }

    private static void PrintSteps(IReadOnlyList<TraceStep> steps, TextWriter o)
    {
        o.WriteLine($"  {"#",-6} {"stage",-8} {"verdict",-7} {"sig",-4} {"incl",-4} {"links",-5} {"engine key",-16} details");
        foreach (var s in steps)
        {
            var r = s.Record;
            var details = new List<string>();
            if (r.ReasonCode is not null) details.Add($"{r.ReasonCode}: {r.Reason}");
            if (r.Signer is not null && r.Stage == "verify") details.Add($"signer {r.Signer}");
            if (r.Signer is not null && Lifecycle.LifecycleAttestations.IsLifecycle(r.PredicateType)) details.Add($"by {r.Signer}");
            if (r.PolicyDigest is not null && r.Stage == "verify") details.Add($"policy {Short(r.PolicyDigest)}");
            details.Add("out " + string.Join(" ", r.Subjects.Select(x => (x.Name is null ? "" : x.Name + "=") + Short(x.DigestStrings.FirstOrDefault() ?? ""))));
            details.AddRange(s.Problems.Select(p => "!! " + p));
            o.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {r.LogIndex,-6} {r.Stage,-8} {r.Verdict,-7} {(s.SignatureValid ? "ok" : "BAD"),-4} {(s.IncludedInCheckpoint ? "ok" : "NO"),-4} {(s.UnlinkedMaterials.Count == 0 ? "ok" : "BAD"),-5} {(r.KeyId.Length > 16 ? r.KeyId[..16] : r.KeyId),-16} {string.Join("; ", details)}"));
        }
    }

    private static string Short(string digest)
    {
        var colon = digest.IndexOf(':');
        return colon > 0 && digest.Length > colon + 17 ? digest[..(colon + 17)] + "…" : digest;
    }
}
