using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Streams every delivered file (the manifest included) to clamd. Any finding, any scan error and
/// an unreachable clamd reject the delivery: nothing passes as clean because a scan did not happen.
/// </summary>
public sealed class ScanStage : IStage
{
    public string Name => "scan";

    public async Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        var checksums = context.Checksums ?? throw new PipelineException("ENG-STAGE-ORDER", "scan needs the verify stage first");
        var settings = context.Settings.Clamd;
        var files = checksums.Files.Select(f => f.Path).Append(context.Definition.ChecksumManifest).Order(StringComparer.Ordinal).ToList();

        var client = new ClamdClient(ClamdEndpoint.Parse(settings.Endpoints[0]), new ClamdClientOptions { ReadTimeout = settings.Timeout });
        var report = await DeliveryScanner.ScanFilesAsync(context.TreeDir, files, client, settings.Parallelism, ct).ConfigureAwait(false);

        var bad = report.Files.Where(f => f.Verdict != ClamdVerdict.Clean).ToList();
        if (bad.Count > 0)
        {
            var infected = bad.Where(f => f.Verdict == ClamdVerdict.Infected).ToList();
            var list = string.Join("; ", bad.Take(10).Select(f => f.Verdict == ClamdVerdict.Infected ? $"{f.Path}: {f.Signature}" : $"{f.Path}: scan error ({f.Detail})"));
            if (bad.Count > 10) list += $"; and {bad.Count - 10} more";
            throw infected.Count > 0
                ? new CheckupException("SCAN-INFECTED", $"clamd found malware in {infected.Count} file(s): {list}")
                : new CheckupException("SCAN-ERROR", $"{bad.Count} file(s) could not be scanned, so the delivery is not accepted: {list}");
        }

        // A digest over what was scanned and the verdicts links this stage to the next.
        var canonical = new StringBuilder();
        canonical.Append("clamd ").Append(report.ClamdVersion).Append('\n');
        foreach (var f in report.Files.OrderBy(f => f.Path, StringComparer.Ordinal)) canonical.Append(f.Path).Append(' ').Append(f.Verdict).Append('\n');
        var digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));

        var evidence = StageOutcome.NewEvidence();
        evidence["clamdVersion"] = report.ClamdVersion;
        evidence["filesScanned"] = report.Files.Count.ToString(CultureInfo.InvariantCulture);
        evidence["findings"] = "0";
        return new StageOutcome(checksums.ManifestDigest, digest, evidence);
    }
}
