using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Engine.Approvals;

/// <summary>
/// Verifies an approver's own signature over the canonical approval statement with Checkup's
/// verifiers: sshsig in the namespace <c>pipeline-freigabe</c>, or an OpenPGP detached signature,
/// against the key the people file lists for that person and no other.
/// </summary>
public static class ApprovalSignatures
{
    /// <summary>Returns the signing key's fingerprint and method (e.g. <c>ssh SHA256:…</c>).</summary>
    /// <exception cref="LifecycleException">LC-NO-PERSONAL-KEY, LC-SIGNATURE-INVALID (the Checkup code and message name the cause).</exception>
    public static string Verify(byte[] statement, string signature, Person approver, TimeProvider time)
    {
        try
        {
            if (signature.Contains("-----BEGIN SSH SIGNATURE-----", StringComparison.Ordinal))
            {
                var key = approver.SshKey ?? throw new LifecycleException(LifecycleErrors.NoPersonalKey,
                    $"the approval is signed with an SSH key, but the people file lists no sshKey for {approver.Name}");
                var ok = SshSignatureVerifier.Verify(statement, SshSignature.Parse(signature), ApprovalStatement.SshNamespace, [key]);
                return $"ssh {ok.Key.Fingerprint}";
            }

            if (signature.Contains("-----BEGIN PGP SIGNATURE-----", StringComparison.Ordinal))
            {
                var ring = approver.OpenPgpKey ?? throw new LifecycleException(LifecycleErrors.NoPersonalKey,
                    $"the approval is signed with OpenPGP, but the people file lists no openpgpKey for {approver.Name}");
                var ok = OpenPgpVerifier.Verify(statement, OpenPgpSignature.Parse(signature), [ring], OpenPgpPolicy.Default with { Clock = time });
                return $"openpgp {ok.SigningKeyFingerprint}";
            }
        }
        catch (CheckupException e)
        {
            throw new LifecycleException(LifecycleErrors.SignatureInvalid, $"the Freigabe signature is not {approver.Name}'s signature over this approval statement: {e.Code} {e.Message}", inner: e);
        }

        throw new LifecycleException(LifecycleErrors.SignatureInvalid, "the Freigabe signature is neither an SSH signature (ssh-keygen -Y sign) nor an armored OpenPGP signature");
    }
}
