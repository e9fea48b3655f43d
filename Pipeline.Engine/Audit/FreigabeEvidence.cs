using System.Text.Json.Nodes;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Attestations;

namespace Pipeline.Engine.Audit;

/// <summary>What an auditor learns from a Freigabe statement's embedded human signature.</summary>
/// <param name="Approver">Who approved (from the signed statement).</param>
/// <param name="EnteredBy">Who entered it on their behalf, if someone did.</param>
/// <param name="Signed">Whether the approver's own signature is embedded.</param>
/// <param name="Key">The approver key's fingerprint (as verified), or null when unsigned.</param>
/// <param name="Problem">Why the Freigabe does not verify, or null.</param>
public sealed record FreigabeCheck(string Approver, string? EnteredBy, string Decision, bool Signed, string? Key, string? Problem)
{
    public bool Ok => Problem is null;
}

/// <summary>
/// Offline check of a Freigabe (approval or refusal) statement: the embedded canonical approval
/// statement names the same delivery and the same image digests as the engine's statement, and the
/// approver's own signature (sshsig namespace <c>pipeline-freigabe</c>, or OpenPGP) verifies over
/// exactly those bytes with the embedded public key, whose fingerprint is the recorded one.
/// The auditor compares that fingerprint with the operator's people file.
/// </summary>
public static class FreigabeEvidence
{
    /// <summary>Null when <paramref name="statement"/> is not a Freigabe statement.</summary>
    public static FreigabeCheck? Check(InTotoStatement statement)
    {
        if (statement.Predicate["freigabe"] is not JsonObject f) return null;
        ApprovalStatement s;
        try
        {
            s = ApprovalStatement.Parse(Convert.FromBase64String(f["statement"]?.GetValue<string>() ?? ""));
        }
        catch (Exception e) when (e is PipelineException or FormatException)
        {
            return new FreigabeCheck("?", null, "?", false, null, "FREIGABE-STATEMENT: the embedded approval statement is unreadable: " + e.Message);
        }

        var subjects = statement.Subjects.Where(x => x.Name is not ("lifecycle-link" or "freigabe-statement")).SelectMany(x => x.DigestStrings).Distinct().Order(StringComparer.Ordinal);
        if (!subjects.SequenceEqual(s.Digests.Distinct().Order(StringComparer.Ordinal)))
            return new FreigabeCheck(s.Approver, s.EnteredBy, s.Decision, false, null, "FREIGABE-DIGESTS: the approver's statement names other image digests than the attestation's subjects");
        if (statement.Predicate["delivery"]?["id"]?.GetValue<string>() != s.DeliveryId.ToString("D"))
            return new FreigabeCheck(s.Approver, s.EnteredBy, s.Decision, false, null, "FREIGABE-DELIVERY: the approver's statement names another delivery");

        var signature = f["signature"]?.GetValue<string>();
        if (signature is null) return new FreigabeCheck(s.Approver, s.EnteredBy, s.Decision, false, null, null);
        var publicKey = f["publicKey"]?.GetValue<string>() ?? "";
        var recorded = f["key"]?.GetValue<string>();
        var bytes = s.CanonicalBytes();
        try
        {
            string key;
            if (signature.Contains("-----BEGIN SSH SIGNATURE-----", StringComparison.Ordinal))
            {
                var ok = SshSignatureVerifier.Verify(bytes, SshSignature.Parse(signature), ApprovalStatement.SshNamespace, [SshPublicKey.Parse(publicKey)]);
                key = "ssh " + ok.Key.Fingerprint;
            }
            else
            {
                var ok = OpenPgpVerifier.Verify(bytes, OpenPgpSignature.Parse(signature), [OpenPgpPublicKeyRing.Parse(publicKey)], OpenPgpPolicy.Default with { Clock = new FixedTime(s.IssuedAt) });
                key = "openpgp " + ok.SigningKeyFingerprint;
            }

            return key == recorded
                ? new FreigabeCheck(s.Approver, s.EnteredBy, s.Decision, true, key, null)
                : new FreigabeCheck(s.Approver, s.EnteredBy, s.Decision, true, key, $"FREIGABE-KEY: signed by {key}, the attestation records {recorded}");
        }
        catch (CheckupException e)
        {
            return new FreigabeCheck(s.Approver, s.EnteredBy, s.Decision, true, recorded, $"FREIGABE-SIGNATURE: {e.Code} {e.Message}");
        }
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
