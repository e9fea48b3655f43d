using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Cms;
using Org.BouncyCastle.Tsp;
using BcCert = Org.BouncyCastle.X509.X509Certificate;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>Verifies an RFC 3161 timestamp token over a signature against the trusted timestamp authorities.</summary>
internal static class Rfc3161Verifier
{
    /// <summary>Returns the verified generation time or throws CheckupException(SIG-SIGSTORE-TSA).</summary>
    public static (DateTimeOffset Time, string Authority) Verify(byte[] token, byte[] signature, IReadOnlyList<CertificateAuthorityInfo> tsas)
    {
        const string C = SigstoreCodes.Tsa;
        TimeStampToken tst;
        try
        {
            tst = ParseToken(token);
        }
        catch (Exception ex) when (ex is CmsException or TspException or IOException or ArgumentException or InvalidCastException or InvalidOperationException)
        {
            throw new CheckupException(C, $"RFC 3161 timestamp cannot be parsed as a CMS TimeStampToken: {ex.Message}", ex);
        }
        var info = tst.TimeStampInfo;
        var gen = new DateTimeOffset(DateTime.SpecifyKind(info.GenTime, DateTimeKind.Utc));
        HashAlgorithmName hash = info.MessageImprintAlgOid switch
        {
            "2.16.840.1.101.3.4.2.1" => HashAlgorithmName.SHA256,
            "2.16.840.1.101.3.4.2.2" => HashAlgorithmName.SHA384,
            "2.16.840.1.101.3.4.2.3" => HashAlgorithmName.SHA512,
            var o => throw new CheckupException(C, $"RFC 3161 timestamp uses unsupported message imprint algorithm {o}."),
        };
        var expected = hash == HashAlgorithmName.SHA256 ? SHA256.HashData(signature)
            : hash == HashAlgorithmName.SHA384 ? SHA384.HashData(signature) : SHA512.HashData(signature);
        if (!CryptographicOperations.FixedTimeEquals(expected, info.GetMessageImprintDigest()))
            throw new CheckupException(C, "RFC 3161 timestamp message imprint does not match the bundle signature (timestamp is for different content).");

        var reasons = new List<string>();
        foreach (var tsa in tsas)
        {
            var name = string.IsNullOrEmpty(tsa.Uri) ? tsa.Subject : tsa.Uri;
            var bcLeaf = new BcCert(Org.BouncyCastle.Asn1.X509.X509CertificateStructure.GetInstance(tsa.CertChain[0]));
            try
            {
                tst.Validate(bcLeaf); // signer matches cert (ESSCertID), signature valid, cert valid at genTime, timeStamping EKU
            }
            catch (Exception ex) when (ex is TspException or TspValidationException or CmsException or ArgumentException or InvalidOperationException)
            {
                reasons.Add($"{name}: {ex.Message}");
                continue;
            }
            if (!tsa.ValidFor.Contains(gen))
            {
                reasons.Add($"{name}: timestamp {gen:O} is outside the authority's trusted-root validity {tsa.ValidFor}");
                continue;
            }
            if (!ChainValidAt(tsa.CertChain, gen, out var why))
            {
                reasons.Add($"{name}: TSA certificate chain is not valid at {gen:O}: {why}");
                continue;
            }
            return (gen, name);
        }
        throw new CheckupException(C, tsas.Count == 0
            ? "RFC 3161 timestamp present but the trusted root has no timestamp authorities."
            : $"RFC 3161 timestamp is not verified by any trusted timestamp authority: {string.Join("; ", reasons)}.");
    }

    /// <summary>Accepts a TimeStampResp (status granted / grantedWithMods) or a bare TimeStampToken.</summary>
    private static TimeStampToken ParseToken(byte[] der)
    {
        var seq = Org.BouncyCastle.Asn1.Asn1Sequence.GetInstance(Org.BouncyCastle.Asn1.Asn1Object.FromByteArray(der));
        if (seq.Count > 0 && seq[0] is Org.BouncyCastle.Asn1.Asn1Sequence)
        {
            var resp = new TimeStampResponse(der);
            if (resp.Status is not (0 or 1))
                throw new CheckupException(SigstoreCodes.Tsa, $"RFC 3161 timestamp response status is {resp.Status}, not granted.");
            return resp.TimeStampToken ?? throw new CheckupException(SigstoreCodes.Tsa, "RFC 3161 timestamp response carries no token.");
        }
        return new TimeStampToken(new CmsSignedData(der));
    }

    /// <summary>Validates chain[0] up to chain[^1] (trusted root) at <paramref name="at"/>.</summary>
    internal static bool ChainValidAt(IReadOnlyList<byte[]> chainDer, DateTimeOffset at, out string why)
    {
        var certs = chainDer.Select(d => X509CertificateLoader.LoadCertificate(d)).ToList();
        try
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(certs[^1]);
            foreach (var c in certs.Skip(1).SkipLast(1)) chain.ChainPolicy.ExtraStore.Add(c);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            chain.ChainPolicy.VerificationTime = at.UtcDateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            if (chain.Build(certs[0])) { why = ""; return true; }
            why = string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()));
            return false;
        }
        finally
        {
            foreach (var c in certs) c.Dispose();
        }
    }
}
