using System.Globalization;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Trust;

/// <summary>Who signed, with which key, by which method; the evidence recorded in the ledger.</summary>
public sealed record SignerMatch(SignerDefinition Signer, string Method, string KeyFingerprint, string Algorithm);

/// <summary>
/// Maps signatures to the pipeline's certified senders. The cryptography lives in Checkup; this
/// class applies the operator's rules on top: revoked keys fail for every tag, a key counts only
/// inside its validity window (at the tag's time) and only for the tags it may sign.
/// </summary>
public sealed class SignerVerifier(PipelineDefinition definition, TimeProvider time)
{
    /// <summary>Namespace of SSH signatures on git objects (what git uses).</summary>
    public const string GitNamespace = "git";

    /// <summary>Namespace of detached SSH signatures on files (what ssh-keygen -Y sign -n file uses).</summary>
    public const string FileNamespace = "file";

    /// <summary>
    /// Verifies the tag object (rebuilt byte for byte, its SHA-1 checked before the split is
    /// trusted), or, where the pipeline accepts it, the signed commit behind an unsigned tag.
    /// </summary>
    public SignerMatch VerifyTag(AnnotatedTag tag, SupplierMirror mirror, DateTimeOffset tagTime)
    {
        var raw = GitTagObject.Build(tag.TargetId, tag.TargetType, tag.Name, tag.Tagger, tag.Message);
        GitTagObject.Verify(raw, tag.ObjectId);
        var signed = GitTagObject.Split(raw);
        if (signed.Kind != GitSignatureKind.None)
            return Verify(signed.Payload, Encoding.UTF8.GetString(signed.Signature), signed.Kind, GitNamespace, tag.Name, tagTime, "tag");

        if (!definition.Trust.AcceptSignedCommits)
            throw new CheckupException("CHK-SIG-UNSIGNED", $"tag '{tag.Name}' is not signed; deliveries must be signed tags (git tag -s)");
        var commit = mirror.ExtractCommitSignature(tag.CommitId)
                     ?? throw new CheckupException("CHK-SIG-UNSIGNED", $"neither tag '{tag.Name}' nor its commit {tag.CommitId} is signed; this pipeline accepts signed tags or signed commits");
        var kind = commit.Signature.Contains("-----BEGIN SSH SIGNATURE-----", StringComparison.Ordinal) ? GitSignatureKind.Ssh
            : commit.Signature.Contains("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal) ? GitSignatureKind.OpenPgp
            : throw new CheckupException("CHK-SIG-UNSUPPORTED", $"the commit {tag.CommitId} carries a signature of an unsupported kind (only SSH and OpenPGP are accepted)");
        return Verify(commit.SignedData, commit.Signature, kind, GitNamespace, tag.Name, tagTime, "commit");
    }

    /// <summary>Verifies a detached signature over a file (SSH namespace <c>file</c>, or OpenPGP).</summary>
    public SignerMatch VerifyDetached(byte[] content, string signature, GitSignatureKind kind, string tagName, DateTimeOffset tagTime) =>
        Verify(content, signature, kind, FileNamespace, tagName, tagTime, "detached");

    private SignerMatch Verify(byte[] payload, string signature, GitSignatureKind kind, string sshNamespace, string tagName, DateTimeOffset tagTime, string what)
    {
        SignerMatch match;
        switch (kind)
        {
            case GitSignatureKind.Ssh:
            {
                var sig = SshSignature.Parse(signature);
                var keys = definition.Signers.Select(s => s.Key).OfType<SshSignerKey>().Select(k => k.Key).ToList();
                var ok = SshSignatureVerifier.Verify(payload, sig, sshNamespace, keys);
                var signer = definition.Signers.First(s => s.Key is SshSignerKey k && k.Key.Equals(ok.Key));
                match = new SignerMatch(signer, $"ssh-{what}", ok.Key.Fingerprint, $"{ok.Key.Type} {ok.HashAlgorithm}");
                break;
            }

            case GitSignatureKind.OpenPgp:
            {
                var sig = OpenPgpSignature.Parse(signature);
                var rings = definition.Signers.Select(s => s.Key).OfType<OpenPgpSignerKey>().Select(k => k.Ring).ToList();
                var ok = OpenPgpVerifier.Verify(payload, sig, rings, OpenPgpPolicy.Default with { Clock = time });
                var signer = definition.Signers.First(s => s.Key is OpenPgpSignerKey k && k.Ring.PrimaryFingerprint == ok.PrimaryFingerprint);
                match = new SignerMatch(signer, $"openpgp-{what}", ok.SigningKeyFingerprint, $"{ok.PublicKeyAlgorithm} {ok.HashAlgorithm}");
                break;
            }

            default:
                throw new CheckupException("CHK-SIG-UNSIGNED", $"the {what} for '{tagName}' is not signed");
        }

        CheckRules(match.Signer, tagName, tagTime);
        return match;
    }

    /// <summary>The operator's rules for a cryptographically valid signature by a listed key.</summary>
    internal static void CheckRules(SignerDefinition s, string tagName, DateTimeOffset tagTime)
    {
        static string Day(DateTimeOffset? d) => d?.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) ?? "-";
        if (s.RevokedAt is { } revoked)
            throw new CheckupException("CHK-SIG-REVOKED",
                $"'{tagName}' is signed by {s.Describe()} with key {s.Key.Fingerprint}, which was revoked on {Day(revoked)} ({s.RevocationReason}); a revoked key is not accepted for any tag, old or new");
        if ((s.ValidFrom is { } from && tagTime < from) || (s.ValidUntil is { } until && tagTime > until))
            throw new CheckupException("CHK-SIG-KEY-NOT-VALID",
                $"'{tagName}' is signed by {s.Describe()} with key {s.Key.Fingerprint}, but that key is certified only from {Day(s.ValidFrom)} until {Day(s.ValidUntil)} and the tag was made {Day(tagTime)}");
        if (s.TagPatterns.Count > 0 && !s.TagPatterns.Any(p => p.IsMatch(tagName)))
            throw new CheckupException("CHK-SIG-TAG-NOT-ALLOWED",
                $"{s.Describe()} may sign only tags matching {string.Join(" or ", s.TagPatterns.Select(p => p.ToString()))}, not '{tagName}'");
    }
}
