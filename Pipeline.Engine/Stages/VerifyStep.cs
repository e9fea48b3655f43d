using System.Globalization;
using System.Security.Cryptography;
using Pipeline.Checkup;
using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Trust;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// The trust decision, check by check (each failure names its check): no rollback below the last
/// accepted version; the tag (or, where allowed, its commit) is signed by a certified sender valid
/// at the tag's time and allowed for this tag; the checksum manifest is protected as the pipeline
/// requires and covers every delivered file exactly once with matching digests; and
/// <c>delivery.yaml</c> is valid. Evidence of every passed check goes into the ledger, also when a
/// later check fails. Statement: subject the checksum manifest; materials the tag and its commit.
/// </summary>
public sealed class VerifyStep : IIntakeStep<Fetched, Verified>
{
    public string Name => "verify";

    public async Task<StepResult<Verified>> RunAsync(DeliveryContext context, Fetched input, StepEvidence found, CancellationToken ct)
    {
        var tag = input.Tag;
        var tagTime = input.TagTime;
        var definition = context.Definition;
        var evidence = found.Checks;

        if (context.LastAcceptedTag is { } last && VersionOrder.Compare(tag.Name, last) < 0 && !definition.Trust.AllowDowngrade)
            throw new CheckupException("CHK-ROLLBACK",
                $"tag '{tag.Name}' is a lower version than '{last}', which was already accepted; a rollback needs 'trust.allowDowngrade: true' in the pipeline definition");
        evidence["rollbackCheck"] = context.LastAcceptedTag is null ? "first delivery" : $"after {context.LastAcceptedTag}";

        var signers = new SignerVerifier(definition, context.Time);
        var match = signers.VerifyTag(tag, context.Mirror, tagTime);
        var signer = found.Signer = match.Signer.Describe();
        evidence["signer"] = match.Signer.Name;
        evidence["signerOrganisation"] = match.Signer.Organisation;
        evidence["signerKey"] = match.KeyFingerprint;
        evidence["signatureMethod"] = match.Method;
        evidence["signatureAlgorithm"] = match.Algorithm;
        evidence["tagTime"] = tagTime.ToString("O", CultureInfo.InvariantCulture);

        var settings = definition.Checksums;
        var manifestPath = Path.Combine(context.TreeDir, settings.Manifest);
        if (!File.Exists(manifestPath))
            throw new CheckupException("CHK-MANIFEST-MISSING", $"the delivery has no {settings.Manifest} at the top of the tag; every delivery must list the digest of every file it contains");
        var manifestInfo = new FileInfo(manifestPath);
        if (manifestInfo.Length > 64L << 20)
            throw new CheckupException("CHK-MANIFEST-TOO-LARGE", $"{settings.Manifest} is {manifestInfo.Length} bytes; more than 64 MiB is not a checksum manifest");
        var manifestBytes = await File.ReadAllBytesAsync(manifestPath, ct).ConfigureAwait(false);
        evidence["manifest"] = settings.Manifest;
        // Named before any check of it, so a rejection's signed evidence says which manifest was examined.
        evidence["manifestDigest"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(manifestBytes));
        ManifestProtection.Verify(settings, context.TreeDir, manifestBytes, signers, tag.Name, tagTime, evidence);

        var manifest = ChecksumManifest.Parse(settings.Manifest, manifestBytes);
        var notListed = new HashSet<string>(settings.SignatureFiles.Append(settings.Manifest), StringComparer.Ordinal);
        var report = await ChecksumVerifier.VerifyAsync(context.TreeDir, manifest, notListed.Contains, ct).ConfigureAwait(false);
        if (StageAttestations.ManifestDescriptor(context, report) is { } verifiedManifest) found.Established(verifiedManifest);
        evidence["manifestDigest"] = report.ManifestDigest;
        evidence["checksumAlgorithm"] = report.Algorithm;
        evidence["files"] = report.Files.Count.ToString(CultureInfo.InvariantCulture);

        // The delivery's build description is part of the convention check: a delivery whose
        // delivery.yaml is invalid is rejected here, before anything is published or built.
        var deliveryYaml = Path.Combine(context.TreeDir, DeliveryManifest.FileName);
        if (File.Exists(deliveryYaml)) evidence["deliveryManifestDigest"] = await DigestAsync(deliveryYaml, ct).ConfigureAwait(false);
        var delivery = DeliveryManifestParser.Load(context.TreeDir, definition.Images.AllowedBaseImages, definition.Images.AllowRoot);
        evidence["images"] = string.Join(",", delivery.Images.Select(i => i.Name));
        var outcome = new StageOutcome("sha1:" + tag.ObjectId, report.ManifestDigest, new Dictionary<string, string>(evidence, StringComparer.Ordinal));
        return new StepResult<Verified>(new Verified(input, signer, report, delivery), outcome);
    }

    public InTotoStatement Attest(DeliveryContext context, Fetched input, StepResult<Verified> result, DateTimeOffset finishedOn) =>
        StageAttestations.Passed(context, Name, result.Output.Signer, Manifest(context, result.Output.Checksums), Materials(context, input), result.Outcome, finishedOn);

    /// <summary>Subjects: the manifest once its checksums verified (<see cref="StepEvidence.Established"/>); else the tag.</summary>
    public InTotoStatement AttestFailure(DeliveryContext context, Fetched input, StepFailure failure, DateTimeOffset finishedOn) =>
        StageAttestations.Failed(context, Name, failure, [], Materials(context, input), finishedOn);

    private static IEnumerable<ResourceDescriptor> Manifest(DeliveryContext context, ChecksumReport checksums) =>
        StageAttestations.ManifestDescriptor(context, checksums) is { } m ? [m] : [];

    private static ResourceDescriptor[] Materials(DeliveryContext context, Fetched input) =>
        [StageAttestations.TagDescriptor(context), StageAttestations.CommitDescriptor(context, input.Tag)];

    private static async Task<string> DigestAsync(string path, CancellationToken ct)
    {
        await using var f = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(f, ct).ConfigureAwait(false));
    }
}
