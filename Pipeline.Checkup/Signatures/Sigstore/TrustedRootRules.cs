using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using static Pipeline.Checkup.Signatures.Sigstore.SigstoreJson;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>
/// The field rules of a trusted root (sigstore protobuf-specs <c>sigstore_trustroot.proto</c> and
/// <c>sigstore_common.proto</c>), applied by <see cref="TrustedRoot.Parse"/>. A verifier that reads a
/// missing field as "unbounded" or "any key" trusts more than the root says, so every field the
/// verification depends on is required:
/// <list type="bullet">
/// <item><c>mediaType</c>: required, one of the trusted-root media types (v0.1 in both spellings, v0.2).</item>
/// <item>tlog/ctlog: <c>logId.keyId</c> (REQUIRED in <c>LogId</c>); <c>hashAlgorithm</c> = SHA2_256 (the only
/// Merkle hash we verify); <c>publicKey.rawBytes</c> (a key); <c>publicKey.keyDetails</c> known, supported
/// and matching the key; <c>publicKey.validFor.start</c> (<c>TimeRange.start</c> is not optional);
/// a tlog's <c>baseUrl</c> (the checkpoint signer name is checked against it);
/// <c>checkpointKeyId.keyId</c> when present.</item>
/// <item>certificate/timestamp authority: <c>certChain.certificates</c> with at least one DER certificate
/// (<c>X509Certificate.raw_bytes</c> is REQUIRED); <c>validFor.start</c>.</item>
/// <item>any <c>validFor.end</c> is not before its start. Unknown fields are ignored (protobuf JSON).</item>
/// </list>
/// </summary>
internal sealed class TrustedRootRules
{
    private const string C = SigstoreCodes.TrustedRootMalformed;

    /// <summary>The trusted-root media types of protobuf-specs.</summary>
    public static readonly IReadOnlySet<string> MediaTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "application/vnd.dev.sigstore.trustedroot.v0.1+json",
        "application/vnd.dev.sigstore.trustedroot.v0.2+json",
    };

    /// <summary>Key details we verify with, and the key each requires ("RSA" any size).</summary>
    private static readonly Dictionary<string, string> Supported = new(StringComparer.Ordinal)
    {
        ["PKCS1_RSA_PKCS1V5"] = "RSA",
        ["PKIX_RSA_PKCS1V5"] = "RSA",
        ["PKIX_RSA_PKCS1V15_2048_SHA256"] = "RSA-2048",
        ["PKIX_RSA_PKCS1V15_3072_SHA256"] = "RSA-3072",
        ["PKIX_RSA_PKCS1V15_4096_SHA256"] = "RSA-4096",
        ["PKIX_ECDSA_P256_SHA_256"] = "EC P-256",
        ["PKIX_ECDSA_P384_SHA_384"] = "EC P-384",
        ["PKIX_ECDSA_P521_SHA_512"] = "EC P-521",
        ["PKIX_ED25519"] = "Ed25519",
    };

    /// <summary>Key details the specification defines that this verifier cannot honour (it would verify with another scheme).</summary>
    private static readonly HashSet<string> KnownUnsupported = new(StringComparer.Ordinal)
    {
        "PKCS1_RSA_PSS", "PKIX_RSA_PSS", "PKIX_RSA_PSS_2048_SHA256", "PKIX_RSA_PSS_3072_SHA256", "PKIX_RSA_PSS_4096_SHA256",
        "PKIX_ECDSA_P256_HMAC_SHA_256", "PKIX_ED25519_PH", "PKIX_ECDSA_P384_SHA_256", "PKIX_ECDSA_P521_SHA_256",
        "LMS_SHA256", "LMOTS_SHA256", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87",
    };

    private readonly List<string> _errors = [];

    public void MediaType(JsonElement root)
    {
        var before = _errors.Count;
        var mt = Try(() => OptStr(root, "mediaType", C, "trustedRoot"));
        if (mt is null) { if (_errors.Count == before) _errors.Add("trustedRoot.mediaType is missing (required: one of " + string.Join(", ", MediaTypes) + ")."); return; }
        if (!MediaTypes.Contains(mt)) _errors.Add($"trustedRoot.mediaType '{mt}' is not a trusted-root media type (" + string.Join(", ", MediaTypes) + ").");
    }

    public List<T> Each<T>(JsonElement root, string name, Func<JsonElement, string, T?> parse) where T : class
    {
        var list = new List<T>();
        var items = Try(() => Arr(root, name, C, "trustedRoot")) ?? [];
        for (var i = 0; i < items.Count; i++)
        {
            if (items[i].ValueKind != JsonValueKind.Object) { _errors.Add($"{name}[{i}] must be an object."); continue; }
            if (parse(items[i], $"{name}[{i}]") is { } v) list.Add(v);
        }
        return list;
    }

    public TransparencyLogInfo? Log(JsonElement e, string path, bool isRekor)
    {
        var before = _errors.Count;
        var baseUrl = Try(() => OptStr(e, "baseUrl", C, path)) ?? "";
        if (isRekor && baseUrl.Length == 0) _errors.Add($"{path}.baseUrl is missing: a transparency log's checkpoints are checked against its name.");
        var hash = Try(() => OptStr(e, "hashAlgorithm", C, path));
        if (hash is null) Missing($"{path}.hashAlgorithm");
        else if (hash != "SHA2_256") _errors.Add($"{path}.hashAlgorithm '{hash}' is not supported (SHA2_256 only).");
        var logId = Try(() => ReqB64(ReqObj(e, "logId", C, path), "keyId", C, path + ".logId"));
        if (Try(() => OptObj(e, "checkpointKeyId", C, path)) is { } ck) Try(() => ReqB64(ck, "keyId", C, path + ".checkpointKeyId"));
        var pk = Try<JsonElement?>(() => ReqObj(e, "publicKey", C, path));
        byte[]? spki = null;
        string? details = null;
        TimeWindow? window = null;
        if (pk is { } k)
        {
            var kp = path + ".publicKey";
            var raw = Try(() => ReqB64(k, "rawBytes", C, kp));
            details = Try(() => OptStr(k, "keyDetails", C, kp));
            if (details is null) Missing($"{kp}.keyDetails");
            else if (KnownUnsupported.Contains(details)) _errors.Add($"{kp}.keyDetails {details} is not supported by this verifier.");
            else if (!Supported.ContainsKey(details)) _errors.Add($"{kp}.keyDetails '{details}' is unknown.");
            if (raw is not null && details is not null && Supported.TryGetValue(details, out var want)) spki = Key(raw, details, want, kp);
            window = Window(k, kp, required: true);
        }
        if (_errors.Count > before || logId is null || spki is null || window is null || details is null) return null;
        return new TransparencyLogInfo(baseUrl, logId, spki, details, window);
    }

    public CertificateAuthorityInfo? Authority(JsonElement e, string path)
    {
        var before = _errors.Count;
        var uri = Try(() => OptStr(e, "uri", C, path)) ?? "";
        var subj = Try(() => OptObj(e, "subject", C, path));
        var subject = subj is { } s ? $"O={Try(() => OptStr(s, "organization", C, path))}, CN={Try(() => OptStr(s, "commonName", C, path))}" : "";
        var chain = new List<byte[]>();
        if (Try<JsonElement?>(() => ReqObj(e, "certChain", C, path)) is { } cc)
        {
            var certs = Try(() => Arr(cc, "certificates", C, path + ".certChain", 10)) ?? [];
            if (certs.Count == 0) _errors.Add($"{path}.certChain has no certificates.");
            for (var i = 0; i < certs.Count; i++)
            {
                var cp = $"{path}.certChain.certificates[{i}]";
                if (Try(() => ReqB64(certs[i], "rawBytes", C, cp)) is not { } der) continue;
                try { using var _ = X509CertificateLoader.LoadCertificate(der); chain.Add(der); }
                catch (CryptographicException ex) { _errors.Add($"{cp}.rawBytes is not a DER X.509 certificate: {ex.Message}"); }
            }
        }
        var window = Window(e, path, required: true);
        return _errors.Count > before || window is null ? null : new CertificateAuthorityInfo(uri, subject, chain, window);
    }

    public void ThrowIfAny()
    {
        if (_errors.Count == 0) return;
        throw new CheckupException(C, $"Trusted root is incomplete or malformed ({_errors.Count} problem(s)): {string.Join(" ", _errors)}");
    }

    private byte[]? Key(byte[] raw, string details, string want, string path)
    {
        try
        {
            byte[] spki = raw;
            if (details == "PKCS1_RSA_PKCS1V5")
            {
                // PKCS#1 RSAPublicKey encoding, not SPKI.
                using var rsa = RSA.Create();
                rsa.ImportRSAPublicKey(raw, out var read);
                if (read != raw.Length) throw new CryptographicException("trailing bytes after the RSA public key");
                spki = rsa.ExportSubjectPublicKeyInfo();
            }
            var kind = VerifierKey.FromSpki(spki, C).Kind;
            var ok = want == "RSA" ? kind.StartsWith("RSA-", StringComparison.Ordinal) : kind == want;
            if (!ok) { _errors.Add($"{path}.rawBytes is a {kind} key, but keyDetails {details} requires {want}."); return null; }
            return spki;
        }
        catch (Exception ex) when (ex is CheckupException or CryptographicException)
        {
            _errors.Add($"{path}.rawBytes is not a {details} public key: {ex.Message}");
            return null;
        }
    }

    private TimeWindow? Window(JsonElement e, string path, bool required)
    {
        var v = Try(() => OptObj(e, "validFor", C, path));
        if (v is null)
        {
            if (required) _errors.Add($"{path}.validFor is missing (required: its start bounds when the entry may be trusted).");
            return null;
        }
        var start = Try(() => OptTime(v.Value, "start", C, path + ".validFor"));
        var end = Try(() => OptTime(v.Value, "end", C, path + ".validFor"));
        if (start is null)
        {
            if (!v.Value.TryGetProperty("start", out var sv) || sv.ValueKind == JsonValueKind.Null)
                _errors.Add($"{path}.validFor.start is missing (TimeRange.start is required; a missing start is not 'since forever').");
            return null;
        }
        if (end is not null && end < start) { _errors.Add($"{path}.validFor ends ({end:O}) before it starts ({start:O})."); return null; }
        return new TimeWindow(start, end);
    }

    private void Missing(string path) => _errors.Add($"Required field {path} is missing.");

    private T? Try<T>(Func<T> read)
    {
        try { return read(); }
        catch (CheckupException ex) { _errors.Add(ex.Message); return default; }
    }
}
