using System.Globalization;
using System.Text.Json;
using Pipeline.Checkup.Archives;
using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Definitions;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Streams every delivered file (the manifest included) to the clamd pool and judges the result
/// with the pipeline's scan policy and profile (<c>scan: { policy, profile }</c>; without it the
/// built-in strict policy). Malware, scan errors, policy violations and no reachable clamd reject
/// the delivery: nothing passes as clean because a scan did not happen. The evidence names the
/// policy version, the clamd version and every finding (file, SHA-256, detection); the full
/// verdict is also written to <c>scan-report.json</c> in the delivery's folder (kept in quarantine).
/// Statement: subject the verdict digest (passed); material the checksum manifest.
/// </summary>
public sealed class ScanStep : IIntakeStep<ScanInput, Scanned>
{
    /// <summary>Name of the verdict file in the delivery's work folder.</summary>
    public const string ReportFile = "scan-report.json";

    public string Name => "scan";

    public async Task<StepResult<Scanned>> RunAsync(DeliveryContext context, ScanInput scan, StepEvidence found, CancellationToken ct)
    {
        var input = scan.Verified;
        var checksums = input.Checksums;
        var files = checksums.Files.Select(f => f.Path).Append(context.Definition.ChecksumManifest).Distinct().Order(StringComparer.Ordinal).ToList();

        // One policy judges the whole delivery: the one the files were scanned with ahead, read once.
        var (policy, profile) = scan.Ahead is { } started ? (started.Policy, started.Profile) : LoadPolicy(context.Settings.PipelinesDir, context.Definition.Scan);
        using var pool = CreatePool(context.Settings.Clamd, context.Time);
        // The files scanned as fetch wrote them: their verdicts are taken, and counted for the evidence.
        var ahead = 0;
        Func<string, Task<FileVerdict>?>? scannedAhead = scan.Ahead is { } a
            ? rel =>
            {
                var early = a.Of(rel);
                if (early is not null) Interlocked.Increment(ref ahead);
                return early;
            }
            : null;
        var verdict = await new PolicyScanner(pool, context.Settings.Clamd.Limits, context.Time).ScanAsync(context.TreeDir, files, policy, profile, scannedAhead, ct).ConfigureAwait(false);
        Observability.EngineMetrics.Scanned(Observability.EngineMetrics.TenantOf(context.Settings.Tenants, context.Definition.Name), context.Definition.Name,
            verdict.Files.Count(f => f.Sha256 is not null), verdict.Files.Where(f => f.Sha256 is not null).Sum(f => f.Size));

        // The scanned digest must match what verify checked: the same bytes were judged.
        var expected = checksums.Files.ToDictionary(f => f.Path, f => f.Sha256, StringComparer.Ordinal);
        foreach (var f in verdict.Files)
        {
            if (f.Sha256 is not null && expected.TryGetValue(f.Path, out var d) && !string.Equals(d, f.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new PipelineException("SCAN-CHANGED", $"'{f.Path}' changed between verify and scan (verified sha256:{d}, scanned sha256:{f.Sha256}); the delivery folder was tampered with");
        }

        await WriteReportAsync(Path.Combine(context.WorkDir, ReportFile), verdict, ct).ConfigureAwait(false);
        var evidence = Evidence(verdict);
        evidence["filesScannedAhead"] = ahead.ToString(CultureInfo.InvariantCulture);
        verdict.EnsureAccepted(evidence);
        var digest = verdict.Digest();
        return new StepResult<Scanned>(new Scanned(input, digest), new StageOutcome(checksums.ManifestDigest, digest, evidence));
    }

    public InTotoStatement Attest(DeliveryContext context, ScanInput input, StepResult<Scanned> result, DateTimeOffset finishedOn) =>
        StageAttestations.Passed(context, Name, input.Verified.Signer,
            StageAttestations.ScanVerdictDescriptor(result.Output.VerdictDigest) is { } v ? [v] : [], Materials(context, input.Verified), result.Outcome, finishedOn);

    public InTotoStatement AttestFailure(DeliveryContext context, ScanInput input, StepFailure failure, DateTimeOffset finishedOn) =>
        StageAttestations.Failed(context, Name, failure, [], Materials(context, input.Verified), finishedOn);

    private static IEnumerable<ResourceDescriptor> Materials(DeliveryContext context, Verified input) =>
        StageAttestations.ManifestDescriptor(context, input.Checksums) is { } m ? [m] : [];

    /// <summary>The policy and profile a pipeline uses (the built-in strict policy when it names none).</summary>
    public static (ScanPolicy Policy, string Profile) LoadPolicy(string pipelinesDir, ScanSelection? selection)
    {
        if (selection is null) return (ScanPolicy.BuiltIn, "normal");
        var policy = ScanPolicyLoader.Load(ScanPolicyLoader.PathOf(pipelinesDir, selection.Policy));
        _ = policy.Profile(selection.Profile); // unknown profile: SCAN-POLICY-PROFILE before any byte is sent
        return (policy, selection.Profile);
    }

    /// <summary>A pool over every configured clamd endpoint.</summary>
    public static ClamdPool CreatePool(Configuration.ClamdSettings settings, TimeProvider time) =>
        new(settings.Endpoints.Select(ClamdEndpoint.Parse).ToList(),
            new ClamdPoolOptions { Parallelism = settings.Parallelism, Client = new ClamdClientOptions { ReadTimeout = settings.Timeout } }, time);

    /// <summary>What the ledger records: policy name, version and profile, clamd version, counts and every finding.</summary>
    public static Dictionary<string, string> Evidence(ScanVerdict verdict)
    {
        var evidence = StageOutcome.NewEvidence();
        evidence["policy"] = verdict.PolicyName;
        evidence["policyVersion"] = verdict.PolicyVersion;
        evidence["profile"] = verdict.Profile;
        evidence["clamdVersion"] = verdict.ClamdVersion;
        evidence["decision"] = verdict.Decision.ToString().ToLowerInvariant();
        evidence["filesScanned"] = verdict.Files.Count(f => f.Sha256 is not null).ToString(CultureInfo.InvariantCulture);
        evidence["filesTotal"] = verdict.Files.Count.ToString(CultureInfo.InvariantCulture);
        evidence["bytesScanned"] = verdict.Files.Where(f => f.Sha256 is not null).Sum(f => f.Size).ToString(CultureInfo.InvariantCulture);
        var findings = verdict.Findings.ToList();
        evidence["findingCount"] = findings.Count.ToString(CultureInfo.InvariantCulture);
        evidence["findings"] = JsonSerializer.Serialize(findings.Select(f => new
        {
            file = f.Path,
            sha256 = f.Sha256,
            detection = f.Detection,
            outcome = f.Outcome.ToString().ToLowerInvariant(),
            reason = f.Reason,
        }));
        if (verdict.Problems.Count > 0) evidence["problems"] = JsonSerializer.Serialize(verdict.Problems);

        // What clamd really read: its limits, and what the engine measured inside every archive.
        if (verdict.ClamdLimits is { } limits)
            evidence["clamdLimits"] = JsonSerializer.Serialize(new
            {
                maxFileSize = limits.MaxFileSize, maxScanSize = limits.MaxScanSize, maxRecursion = limits.MaxRecursion,
                maxFiles = limits.MaxFiles, streamMaxLength = limits.StreamMaxLength,
            });
        var archives = verdict.Archives.ToList();
        evidence["archivesInspected"] = archives.Count.ToString(CultureInfo.InvariantCulture);
        evidence["archiveMembers"] = archives.Sum(a => a.Archive!.MemberCount).ToString(CultureInfo.InvariantCulture);
        evidence["archiveUnpackedBytes"] = archives.Sum(a => a.Archive!.TotalUnpacked).ToString(CultureInfo.InvariantCulture);
        evidence["archivesIncomplete"] = archives.Count(a => !a.Archive!.Complete).ToString(CultureInfo.InvariantCulture);
        if (archives.Count > 0) evidence["archives"] = JsonSerializer.Serialize(archives.Select(a => ArchiveJson(a.Path, a.Archive!, a.Code)));
        return evidence;
    }

    private static object ArchiveJson(string file, ArchiveReport a, string? code) => new
    {
        file,
        format = a.Format,
        members = a.MemberCount,
        unpackedBytes = a.TotalUnpacked,
        packedBytes = a.PackedSize,
        ratio = Math.Round(a.Ratio, 1),
        deepestLevel = a.DeepestLevel,
        nesting = a.Nesting,
        complete = a.Complete,
        code,
        issue = a.Issues.FirstOrDefault() is { } i ? new { kind = i.Kind.ToString().ToLowerInvariant(), member = i.Member, detail = i.Detail } : null,
    };

    /// <summary>Writes the whole verdict as indented JSON.</summary>
    public static async Task WriteReportAsync(string path, ScanVerdict verdict, CancellationToken ct)
    {
        var stream = File.Create(path);
        await using (stream.ConfigureAwait(false))
            await JsonSerializer.SerializeAsync(stream, ToJson(verdict), JsonOptions, ct).ConfigureAwait(false);
    }

    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>A JSON-friendly shape of a verdict (enums as lowercase strings).</summary>
    public static object ToJson(ScanVerdict v) => new
    {
        policy = v.PolicyName,
        policyVersion = v.PolicyVersion,
        profile = v.Profile,
        clamdVersion = v.ClamdVersion,
        decision = v.Decision.ToString().ToLowerInvariant(),
        digest = v.Digest(),
        problems = v.Problems,
        clamdLimits = v.ClamdLimits?.ToString(),
        files = v.Files.Select(f => new
        {
            path = f.Path,
            sha256 = f.Sha256,
            size = f.Size,
            type = FileTypes.Name(f.Type),
            outcome = f.Outcome.ToString().ToLowerInvariant(),
            detection = f.Detection,
            code = f.Code,
            reason = f.Reason,
            archive = f.Archive is { } a ? ArchiveJson(f.Path, a, f.Code) : null,
            members = f.Archive?.Members.Take(1000).Select(m => new { path = m.Path, size = m.Size, level = m.Level }),
        }),
    };
}
