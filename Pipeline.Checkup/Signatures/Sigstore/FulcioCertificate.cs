using System.Buffers.Binary;
using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>Reads Fulcio-specific fields of a signing certificate and verifies its embedded SCTs.</summary>
internal static class FulcioCertificate
{
    public const string IssuerV1Oid = "1.3.6.1.4.1.57264.1.1";
    public const string IssuerV2Oid = "1.3.6.1.4.1.57264.1.8";
    public const string SctListOid = "1.3.6.1.4.1.11129.2.4.2";

    /// <summary>SAN URIs and e-mail addresses.</summary>
    public static IReadOnlyList<string> SubjectAlternativeNames(X509Certificate2 cert)
    {
        var ext = cert.Extensions["2.5.29.17"];
        if (ext is null) return [];
        var result = new List<string>();
        var seq = new AsnReader(ext.RawData, AsnEncodingRules.DER).ReadSequence();
        while (seq.HasData)
        {
            var tag = seq.PeekTag();
            if (tag.TagClass == TagClass.ContextSpecific && (tag.TagValue == 1 || tag.TagValue == 6))
                result.Add(seq.ReadCharacterString(UniversalTagNumber.IA5String, new Asn1Tag(TagClass.ContextSpecific, tag.TagValue)));
            else
                seq.ReadEncodedValue();
        }
        return result;
    }

    /// <summary>OIDC issuer from extension .1.8 (DER UTF8String) or the legacy .1.1 (raw bytes).</summary>
    public static string? OidcIssuer(X509Certificate2 cert)
    {
        var v2 = cert.Extensions[IssuerV2Oid];
        if (v2 is not null)
            return new AsnReader(v2.RawData, AsnEncodingRules.DER).ReadCharacterString(UniversalTagNumber.UTF8String);
        var v1 = cert.Extensions[IssuerV1Oid];
        return v1 is null ? null : Encoding.UTF8.GetString(v1.RawData);
    }

    /// <summary>
    /// Verifies embedded SCTs against the trusted CT logs; returns the number verified. The signed
    /// data is the RFC 6962 precertificate entry: the leaf TBS without the SCT-list extension,
    /// bound to the issuer's SPKI hash.
    /// </summary>
    public static int VerifyEmbeddedScts(X509Certificate2 leaf, X509Certificate2 issuer, IReadOnlyList<TransparencyLogInfo> ctlogs, out string detail)
    {
        var ext = leaf.Extensions[SctListOid];
        if (ext is null) { detail = "certificate has no embedded SCT list"; return 0; }
        byte[] list;
        try { list = new AsnReader(ext.RawData, AsnEncodingRules.DER).ReadOctetString(); }
        catch (AsnContentException) { detail = "SCT list extension is not an OCTET STRING"; return 0; }
        var tbs = PrecertTbs(leaf.RawData);
        var issuerKeyHash = SHA256.HashData(issuer.PublicKey.ExportSubjectPublicKeyInfo());
        var verified = 0;
        detail = "no SCT from a trusted CT log verified";
        var span = list.AsSpan();
        if (span.Length < 2 || BinaryPrimitives.ReadUInt16BigEndian(span) != span.Length - 2) { detail = "SCT list length is inconsistent"; return 0; }
        span = span[2..];
        while (span.Length > 0)
        {
            if (span.Length < 2) { detail = "truncated SCT list"; return verified; }
            int len = BinaryPrimitives.ReadUInt16BigEndian(span);
            if (span.Length < 2 + len) { detail = "truncated SCT"; return verified; }
            var sct = span.Slice(2, len);
            span = span[(2 + len)..];
            if (sct.Length < 1 + 32 + 8 + 2 || sct[0] != 0) continue;
            var logId = sct.Slice(1, 32).ToArray();
            var timestamp = sct.Slice(33, 8);
            int extLen = BinaryPrimitives.ReadUInt16BigEndian(sct[41..]);
            if (sct.Length < 43 + extLen + 4) continue;
            var exts = sct.Slice(43, extLen);
            var rest = sct[(43 + extLen)..];
            int sigLen = BinaryPrimitives.ReadUInt16BigEndian(rest[2..]);
            if (rest.Length != 4 + sigLen) continue;
            var sig = rest.Slice(4, sigLen).ToArray();

            var signed = new List<byte> { 0, 0 };
            signed.AddRange(timestamp.ToArray());
            signed.AddRange([0, 1]);
            signed.AddRange(issuerKeyHash);
            signed.AddRange([(byte)(tbs.Length >> 16), (byte)(tbs.Length >> 8), (byte)tbs.Length]);
            signed.AddRange(tbs);
            signed.AddRange([(byte)(extLen >> 8), (byte)extLen]);
            signed.AddRange(exts.ToArray());
            var data = signed.ToArray();
            var ms = BinaryPrimitives.ReadInt64BigEndian(timestamp);
            foreach (var log in ctlogs.Where(l => l.LogId.AsSpan().SequenceEqual(logId)))
            {
                if (!log.ValidFor.Contains(DateTimeOffset.FromUnixTimeMilliseconds(ms))) continue;
                var key = VerifierKey.FromSpki(log.PublicKeySpki, SigstoreCodes.TrustedRootMalformed);
                if (key.Verify(data, sig)) { verified++; detail = $"SCT from {log.BaseUrl}"; break; }
            }
        }
        return verified;
    }

    /// <summary>The TBSCertificate of <paramref name="certDer"/> with the SCT list extension removed.</summary>
    internal static byte[] PrecertTbs(byte[] certDer)
    {
        var cert = new AsnReader(certDer, AsnEncodingRules.DER).ReadSequence();
        var tbs = cert.ReadSequence();
        var w = new AsnWriter(AsnEncodingRules.DER);
        using (w.PushSequence())
        {
            var ctx3 = new Asn1Tag(TagClass.ContextSpecific, 3, true);
            while (tbs.HasData)
            {
                if (tbs.PeekTag() == ctx3)
                {
                    var extsOuter = tbs.ReadSequence(ctx3);
                    var exts = extsOuter.ReadSequence();
                    using (w.PushSequence(ctx3))
                    using (w.PushSequence())
                    {
                        while (exts.HasData)
                        {
                            var raw = exts.ReadEncodedValue();
                            var one = new AsnReader(raw, AsnEncodingRules.DER).ReadSequence();
                            if (one.ReadObjectIdentifier() == SctListOid) continue;
                            w.WriteEncodedValue(raw.Span);
                        }
                    }
                }
                else
                {
                    w.WriteEncodedValue(tbs.ReadEncodedValue().Span);
                }
            }
        }
        return w.Encode();
    }
}
