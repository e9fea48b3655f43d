using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Definitions;

namespace Pipeline.Engine.Trust;

/// <summary>
/// Checks that the checksum manifest itself is signed as the pipeline requires: by being part of
/// the signed tag's tree (nothing more to do), by a detached signature of a certified sender beside
/// it, or by a Sigstore bundle beside it, verified offline against the operator's trusted root.
/// </summary>
public static class ManifestProtection
{
    public static void Verify(ChecksumSettings settings, string treeDir, byte[] manifest, SignerVerifier signers,
        string tagName, DateTimeOffset tagTime, IDictionary<string, string> evidence)
    {
        evidence["manifestSignature"] = settings.Signature.ToString().ToLowerInvariant();
        switch (settings.Signature)
        {
            case ManifestSignature.Tag:
                return;
            case ManifestSignature.Detached:
                VerifyDetached(settings, treeDir, manifest, signers, tagName, tagTime, evidence);
                return;
            case ManifestSignature.Sigstore:
                VerifySigstore(settings.Sigstore!, treeDir, manifest, evidence);
                return;
        }
    }

    private static void VerifyDetached(ChecksumSettings settings, string treeDir, byte[] manifest, SignerVerifier signers,
        string tagName, DateTimeOffset tagTime, IDictionary<string, string> evidence)
    {
        var ssh = Path.Combine(treeDir, settings.Manifest + ".sig");
        var pgp = Path.Combine(treeDir, settings.Manifest + ".asc");
        var (file, kind) = File.Exists(ssh) ? (ssh, GitSignatureKind.Ssh) : File.Exists(pgp) ? (pgp, GitSignatureKind.OpenPgp) : (null, GitSignatureKind.None);
        if (file is null)
            throw new CheckupException("CHK-MANIFEST-UNSIGNED",
                $"this pipeline requires a detached signature beside {settings.Manifest}: {settings.Manifest}.sig (ssh-keygen -Y sign -n file) or {settings.Manifest}.asc (gpg --detach-sign --armor)");
        if (new FileInfo(file).Length > 64 * 1024)
            throw new CheckupException("CHK-MANIFEST-SIG-TOO-LARGE", $"{Path.GetFileName(file)} is larger than 64 KiB; that is not a signature");
        var match = signers.VerifyDetached(manifest, File.ReadAllText(file), kind, tagName, tagTime);
        evidence["manifestSigner"] = match.Signer.Name;
        evidence["manifestSignerKey"] = match.KeyFingerprint;
    }

    private static void VerifySigstore(SigstoreRequirement req, string treeDir, byte[] manifest, IDictionary<string, string> evidence)
    {
        var bundlePath = Path.Combine(treeDir, req.Bundle);
        if (!File.Exists(bundlePath))
            throw new CheckupException("CHK-MANIFEST-UNSIGNED", $"this pipeline requires a Sigstore bundle '{req.Bundle}' beside the checksum manifest");
        if (new FileInfo(bundlePath).Length > 32L << 20)
            throw new CheckupException("CHK-MANIFEST-SIG-TOO-LARGE", $"'{req.Bundle}' is larger than 32 MiB");
        var rootFile = req.TrustedRootFile ?? SigstoreTrustRoots.DefaultTrustedRoot()
                       ?? throw new PipelineException(SigstoreTrustRoots.RootErrorCode, "no Sigstore trusted root is configured or installed (checksums.sigstore.trustedRoot, or scripts/install-sigstore-root.sh)");
        var root = SigstoreTrustRoots.Load(rootFile);
        var policy = req.PublicKeyFile is not null
            ? VerificationPolicy.ForPublicKey(File.ReadAllText(req.PublicKeyFile))
            : VerificationPolicy.ForIdentity(req.Identity!, req.Issuer!);
        var result = SigstoreVerifier.Verify(SigstoreBundle.Parse(File.ReadAllText(bundlePath)), ArtifactInput.FromBytes(manifest), policy, root);
        evidence["sigstoreIdentity"] = result.SignerIdentity ?? "(public key)";
        evidence["sigstoreIssuer"] = result.Issuer ?? "-";
        evidence["sigstoreLogIndexes"] = string.Join(",", result.LogIndexes);
        evidence["sigstoreChecks"] = string.Join(",", result.Checks.Select(c => c.Name));
    }
}
