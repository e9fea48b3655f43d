using System.Globalization;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Checksums;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Definitions;

namespace Pipeline.Engine.Stages;

/// <summary>
/// The trust decision: the tag object is rebuilt byte for byte (its SHA-1 must be the tag id
/// before the payload/signature split is trusted), its SSH signature (namespace <c>git</c>) must
/// verify with a certified sender's key valid at the tag's time, and the checksum manifest must
/// cover every delivered file exactly once with matching digests.
/// </summary>
public sealed class VerifyStage : IStage
{
    public const string SshNamespace = "git";

    public string Name => "verify";

    public async Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        var tag = context.Annotated ?? throw new PipelineException("ENG-STAGE-ORDER", "verify needs the fetch stage first");
        var evidence = StageOutcome.NewEvidence();

        var signer = VerifyTagSignature(tag, context.Definition, context.TagTime);
        context.Signer = $"{signer.Definition.Name} ({signer.Definition.Organisation})";
        evidence["signer"] = signer.Definition.Name;
        evidence["signerOrganisation"] = signer.Definition.Organisation;
        evidence["signerKey"] = signer.Verification.Key.Fingerprint;
        evidence["signatureHash"] = signer.Verification.HashAlgorithm;
        evidence["signatureType"] = "sshsig";

        var manifestName = context.Definition.ChecksumManifest;
        var manifestPath = Path.Combine(context.TreeDir, manifestName);
        if (!File.Exists(manifestPath))
            throw new CheckupException("CHK-MANIFEST-MISSING", $"the delivery has no {manifestName} at the top of the tag; every delivery must list the digest of every file it contains");
        var manifestInfo = new FileInfo(manifestPath);
        if (manifestInfo.Length > 64L << 20)
            throw new CheckupException("CHK-MANIFEST-TOO-LARGE", $"{manifestName} is {manifestInfo.Length} bytes; more than 64 MiB is not a checksum manifest");
        var manifest = ChecksumManifest.Parse(manifestName, await File.ReadAllBytesAsync(manifestPath, ct).ConfigureAwait(false));
        var report = await ChecksumVerifier.VerifyAsync(context.TreeDir, manifest, p => p == manifestName, ct).ConfigureAwait(false);
        context.Checksums = report;
        // The delivery's build description is part of the convention check: a delivery whose
        // delivery.yaml is invalid is rejected here, before anything is published or built.
        context.Delivery = DeliveryManifestParser.Load(context.TreeDir, context.Definition.Images.AllowedBaseImages, context.Definition.Images.AllowRoot);
        evidence["images"] = string.Join(",", context.Delivery.Images.Select(i => i.Name));

        evidence["manifest"] = manifestName;
        evidence["manifestDigest"] = report.ManifestDigest;
        evidence["files"] = report.Files.Count.ToString(CultureInfo.InvariantCulture);
        return new StageOutcome("sha1:" + tag.ObjectId, report.ManifestDigest, evidence);
    }

    internal sealed record SignerMatch(SignerDefinition Definition, SshVerification Verification);

    internal static SignerMatch VerifyTagSignature(Vcs.AnnotatedTag tag, PipelineDefinition definition, DateTimeOffset tagTime)
    {
        var raw = GitTagObject.Build(tag.TargetId, tag.TargetType, tag.Name, tag.Tagger, tag.Message);
        GitTagObject.Verify(raw, tag.ObjectId);
        var signed = GitTagObject.Split(raw);
        switch (signed.Kind)
        {
            case GitSignatureKind.None:
                throw new CheckupException("CHK-SIG-UNSIGNED", $"tag '{tag.Name}' is not signed; deliveries must be signed tags (git tag -s)");
            case GitSignatureKind.OpenPgp:
                throw new CheckupException("CHK-SIG-UNSUPPORTED", $"tag '{tag.Name}' carries an OpenPGP signature; this pipeline accepts SSH signatures only");
        }

        var signature = SshSignature.Parse(Encoding.UTF8.GetString(signed.Signature));
        var candidates = definition.Signers.Select(s => (Signer: s, Key: SshPublicKey.Parse(s.SshPublicKey))).ToList();
        var valid = candidates.Where(c => (c.Signer.ValidFrom is null || c.Signer.ValidFrom <= tagTime) && (c.Signer.ValidUntil is null || tagTime <= c.Signer.ValidUntil)).ToList();
        SshVerification verification;
        try
        {
            verification = SshSignatureVerifier.Verify(signed.Payload, signature, SshNamespace, valid.Select(c => c.Key).ToList());
        }
        catch (CheckupException) when (candidates.Count != valid.Count)
        {
            // Tell the operator when the key is certified but not at the tag's time.
            var outOfWindow = candidates.Except(valid).FirstOrDefault(c => TryVerify(signed.Payload, signature, c.Key));
            if (outOfWindow.Signer is { } s)
                throw new CheckupException("CHK-SIG-KEY-NOT-VALID",
                    $"tag '{tag.Name}' is signed by {s.Name} ({s.Organisation}) with key {outOfWindow.Key.Fingerprint}, but that key is certified only " +
                    $"from {s.ValidFrom?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "-"} until {s.ValidUntil?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "-"} and the tag was made {tagTime:yyyy-MM-dd}");
            throw;
        }

        var match = valid.First(c => c.Key.Equals(verification.Key));
        return new SignerMatch(match.Signer, verification);
    }

    private static bool TryVerify(byte[] payload, SshSignature signature, SshPublicKey key)
    {
        try
        {
            SshSignatureVerifier.Verify(payload, signature, SshNamespace, [key]);
            return true;
        }
        catch (CheckupException)
        {
            return false;
        }
    }
}
