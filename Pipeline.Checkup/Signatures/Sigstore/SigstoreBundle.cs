using System.Text.Json;
using static Pipeline.Checkup.Signatures.Sigstore.SigstoreJson;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>An RFC 6962/9162 inclusion proof with its checkpoint (signed note) text.</summary>
public sealed record InclusionProof(long LogIndex, byte[] RootHash, long TreeSize, IReadOnlyList<byte[]> Hashes, string? Checkpoint);

/// <summary>One transparency log entry from a bundle.</summary>
public sealed record TlogEntry(
    long LogIndex, byte[] LogId, string Kind, string KindVersion, long IntegratedTime,
    byte[]? SignedEntryTimestamp, InclusionProof? Proof, byte[] CanonicalizedBody);

/// <summary>A detached message signature (hashedrekord content).</summary>
public sealed record MessageSignature(string? DigestAlgorithm, byte[]? Digest, byte[] Signature);

/// <summary>One DSSE signature.</summary>
public sealed record DsseSignature(byte[] Sig, string KeyId);

/// <summary>A DSSE envelope (payload already base64-decoded).</summary>
public sealed record DsseEnvelope(string PayloadType, byte[] Payload, IReadOnlyList<DsseSignature> Signatures);

/// <summary>
/// A parsed, structurally validated Sigstore bundle (media types v0.1, v0.2, v0.3).
/// Exactly one of <see cref="Certificate"/> / <see cref="PublicKeyHint"/> identifies the signer;
/// exactly one of <see cref="MessageSignature"/> / <see cref="Dsse"/> is the content.
/// </summary>
public sealed record SigstoreBundle(
    string MediaType,
    int MinorVersion,
    byte[]? Certificate,
    IReadOnlyList<byte[]> ExtraChain,
    string? PublicKeyHint,
    bool HasPublicKeyMaterial,
    IReadOnlyList<TlogEntry> TlogEntries,
    IReadOnlyList<byte[]> Rfc3161Timestamps,
    MessageSignature? MessageSignature,
    DsseEnvelope? Dsse)
{
    private const string C = SigstoreCodes.BundleMalformed;

    /// <summary>Signature bytes that timestamps and tlog entries must cover.</summary>
    public byte[] SignatureBytes => MessageSignature?.Signature ?? Dsse!.Signatures[0].Sig;

    /// <summary>Parses a bundle strictly; throws CheckupException(SIG-SIGSTORE-BUNDLE-MALFORMED) on any structural problem.</summary>
    public static SigstoreBundle Parse(string json)
    {
        using var doc = ParseDocument(json, C, "Bundle");
        var root = doc.RootElement;
        var mediaType = ReqStr(root, "mediaType", C, "bundle", 200);
        var minor = mediaType switch
        {
            "application/vnd.dev.sigstore.bundle+json;version=0.1" => 1,
            "application/vnd.dev.sigstore.bundle+json;version=0.2" => 2,
            "application/vnd.dev.sigstore.bundle+json;version=0.3" => 3,
            "application/vnd.dev.sigstore.bundle.v0.3+json" => 3,
            _ => throw new CheckupException(C, $"Unsupported bundle mediaType '{Trunc(mediaType)}' (supported: v0.1, v0.2, v0.3)."),
        };

        var vm = ReqObj(root, "verificationMaterial", C, "bundle");
        byte[]? cert = null;
        var extra = new List<byte[]>();
        string? hint = null;
        var kinds = 0;
        if (OptObj(vm, "certificate", C, "verificationMaterial") is { } c)
        {
            kinds++;
            cert = ReqB64(c, "rawBytes", C, "verificationMaterial.certificate");
        }
        if (OptObj(vm, "x509CertificateChain", C, "verificationMaterial") is { } ch)
        {
            kinds++;
            var certs = Arr(ch, "certificates", C, "verificationMaterial.x509CertificateChain", 10);
            if (certs.Count == 0) throw new CheckupException(C, "verificationMaterial.x509CertificateChain has no certificates.");
            var all = certs.Select((x, i) => ReqB64(x, "rawBytes", C, $"verificationMaterial.x509CertificateChain.certificates[{i}]")).ToList();
            cert = all[0];
            extra.AddRange(all.Skip(1));
        }
        var hasPk = false;
        if (OptObj(vm, "publicKey", C, "verificationMaterial") is { } pk)
        {
            kinds++;
            hasPk = true;
            hint = OptStr(pk, "hint", C, "verificationMaterial.publicKey", 1024);
        }
        if (kinds != 1)
            throw new CheckupException(C, "verificationMaterial must contain exactly one of certificate, x509CertificateChain, publicKey.");

        var entries = Arr(vm, "tlogEntries", C, "verificationMaterial", 32).Select((e, i) => ParseEntry(e, $"tlogEntries[{i}]", minor)).ToList();
        for (var i = 0; i < entries.Count; i++)
        {
            for (var j = i + 1; j < entries.Count; j++)
            {
                if (entries[i].LogIndex == entries[j].LogIndex && entries[i].LogId.AsSpan().SequenceEqual(entries[j].LogId))
                    throw new CheckupException(C, $"tlogEntries[{i}] and tlogEntries[{j}] are the same log entry (duplicates could inflate a threshold).");
            }
        }
        var tsv = OptObj(vm, "timestampVerificationData", C, "verificationMaterial");
        var timestamps = tsv is { } t
            ? Arr(t, "rfc3161Timestamps", C, "timestampVerificationData", 32)
                .Select((x, i) => ReqB64(x, "signedTimestamp", C, $"timestampVerificationData.rfc3161Timestamps[{i}]")).ToList()
            : [];

        MessageSignature? ms = null;
        DsseEnvelope? dsse = null;
        if (OptObj(root, "messageSignature", C, "bundle") is { } m)
        {
            string? alg = null; byte[]? digest = null;
            if (OptObj(m, "messageDigest", C, "messageSignature") is { } md)
            {
                alg = OptStr(md, "algorithm", C, "messageSignature.messageDigest", 64);
                digest = ReqB64(md, "digest", C, "messageSignature.messageDigest");
            }
            ms = new MessageSignature(alg, digest, ReqB64(m, "signature", C, "messageSignature", 64 * 1024));
        }
        if (OptObj(root, "dsseEnvelope", C, "bundle") is { } d)
        {
            var payload = ReqB64(d, "payload", C, "dsseEnvelope");
            var ptype = ReqStr(d, "payloadType", C, "dsseEnvelope", 1024);
            var sigs = Arr(d, "signatures", C, "dsseEnvelope", 16)
                .Select((s, i) => new DsseSignature(ReqB64(s, "sig", C, $"dsseEnvelope.signatures[{i}]", 64 * 1024), OptStr(s, "keyid", C, $"dsseEnvelope.signatures[{i}]", 1024) ?? "")).ToList();
            if (sigs.Count != 1) throw new CheckupException(C, $"dsseEnvelope must carry exactly one signature (found {sigs.Count}).");
            dsse = new DsseEnvelope(ptype, payload, sigs);
        }
        if ((ms is null) == (dsse is null))
            throw new CheckupException(C, "Bundle must contain exactly one of messageSignature or dsseEnvelope.");

        // Version-specific requirements (protobuf-specs bundle.proto).
        if (entries.Count == 0)
            throw new CheckupException(C, "Bundle has no transparency log entries (offline verification requires at least one).");
        if (minor >= 3 && extra.Count > 0)
            throw new CheckupException(C, "v0.3 bundles must carry a single certificate, not a certificate chain.");
        return new SigstoreBundle(mediaType, minor, cert, extra, hint, hasPk, entries, timestamps, ms, dsse);
    }

    private static TlogEntry ParseEntry(JsonElement e, string path, int minor)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new CheckupException(C, $"{path} must be an object.");
        var logIndex = NonNegInt64(e, "logIndex", C, path);
        var logId = ReqB64(ReqObj(e, "logId", C, path), "keyId", C, path + ".logId");
        var kv = ReqObj(e, "kindVersion", C, path);
        var kind = ReqStr(kv, "kind", C, path + ".kindVersion", 64);
        var version = ReqStr(kv, "version", C, path + ".kindVersion", 64);
        var integrated = OptInt64(e, "integratedTime", C, path) ?? 0;
        if (integrated < 0) throw new CheckupException(C, $"{path}.integratedTime is negative.");
        byte[]? set = null;
        if (OptObj(e, "inclusionPromise", C, path) is { } p)
            set = ReqB64(p, "signedEntryTimestamp", C, path + ".inclusionPromise");
        InclusionProof? proof = null;
        if (OptObj(e, "inclusionProof", C, path) is { } ip)
        {
            var pp = path + ".inclusionProof";
            var hashes = Arr(ip, "hashes", C, pp, 64).Select((h, i) =>
            {
                if (h.ValueKind != JsonValueKind.String) throw new CheckupException(C, $"{pp}.hashes[{i}] must be a string.");
                return B64(h.GetString()!, C, $"{pp}.hashes[{i}]");
            }).ToList();
            string? cp = null;
            if (OptObj(ip, "checkpoint", C, pp) is { } cpo) cp = ReqStr(cpo, "envelope", C, pp + ".checkpoint", 64 * 1024);
            proof = new InclusionProof(NonNegInt64(ip, "logIndex", C, pp), ReqB64(ip, "rootHash", C, pp),
                NonNegInt64(ip, "treeSize", C, pp), hashes, cp);
        }
        var body = ReqB64(e, "canonicalizedBody", C, path);
        if (minor == 1 && set is null)
            throw new CheckupException(C, $"{path}: v0.1 bundles require an inclusion promise (signed entry timestamp).");
        return new TlogEntry(logIndex, logId, kind, version, integrated, set, proof, body);
    }

    private static string Trunc(string s) => s.Length > 80 ? s[..80] + "…" : s;
}
