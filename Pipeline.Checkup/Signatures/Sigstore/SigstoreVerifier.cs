using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>
/// Offline Sigstore bundle verifier: content signature (message or DSSE), transparency log entry
/// consistency, inclusion proof + checkpoint, SET, RFC 3161 timestamps, Fulcio chain at the
/// verified times, embedded SCT, and identity policy. Fails closed with a stable code per check.
/// </summary>
public static class SigstoreVerifier
{
    private const string InTotoPayloadType = "application/vnd.in-toto+json";

    /// <summary>
    /// Verifies <paramref name="bundle"/> for <paramref name="artifact"/> under <paramref name="policy"/>
    /// and <paramref name="root"/>. Returns the checks performed with evidence, or throws
    /// <see cref="CheckupException"/> whose Code (see <see cref="SigstoreCodes"/>) names the failed check.
    /// </summary>
    public static SigstoreVerificationResult Verify(SigstoreBundle bundle, ArtifactInput artifact, VerificationPolicy policy, TrustedRoot root)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(artifact);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(root);
        var checks = new List<SigstoreCheck>();

        // 1. Signer key material and policy fit.
        X509Certificate2? leaf = null;
        VerifierKey key;
        if (bundle.Certificate is not null)
        {
            if (policy.Identity is null)
                throw new CheckupException(SigstoreCodes.PolicyMismatch, "Bundle is signed with a Fulcio certificate but the policy names only a public key; give --certificate-identity and --certificate-oidc-issuer.");
            try { leaf = X509CertificateLoader.LoadCertificate(bundle.Certificate); }
            catch (CryptographicException ex) { throw new CheckupException(SigstoreCodes.BundleMalformed, $"Bundle certificate is not a valid X.509 certificate: {ex.Message}", ex); }
            key = VerifierKey.FromCertificate(leaf, SigstoreCodes.BundleMalformed);
        }
        else
        {
            if (policy.PublicKeyPem is null)
                throw new CheckupException(SigstoreCodes.PolicyMismatch, "Bundle is signed with a managed key (no certificate) but no public key was given; pass --key.");
            key = VerifierKey.FromPem(policy.PublicKeyPem, SigstoreCodes.KeyInvalid);
        }

        try
        {
            // 2. Content signature.
            byte[]? paeHash = null;
            if (bundle.MessageSignature is { } ms)
            {
                if (ms.Digest is not null)
                {
                    if (ms.DigestAlgorithm is not (null or "SHA2_256"))
                        throw new CheckupException(SigstoreCodes.ArtifactMismatch, $"Bundle message digest algorithm {ms.DigestAlgorithm} is not supported (SHA2_256 only).");
                    if (!ms.Digest.AsSpan().SequenceEqual(artifact.Sha256))
                        throw new CheckupException(SigstoreCodes.ArtifactMismatch, $"Artifact sha256 {Hex(artifact.Sha256)} does not match the bundle's message digest {Hex(ms.Digest)}.");
                }
                bool ok;
                if (!key.IsEd25519 && key.Hash == HashAlgorithmName.SHA256) ok = key.VerifyDigest(artifact.Sha256, HashAlgorithmName.SHA256, ms.Signature);
                else if (artifact.Bytes is not null) ok = key.Verify(artifact.Bytes, ms.Signature);
                else throw new CheckupException(SigstoreCodes.MessageSignature, "This key type signs the artifact bytes, not its SHA-256 digest; give the artifact file, not a digest.");
                if (!ok) throw new CheckupException(SigstoreCodes.MessageSignature, "Message signature does not verify over the artifact with the signer's key.");
                checks.Add(new SigstoreCheck("message-signature", $"signature over sha256:{Hex(artifact.Sha256)} verified"));
            }
            else
            {
                var env = bundle.Dsse!;
                var pae = Pae(env.PayloadType, env.Payload);
                paeHash = SHA256.HashData(pae);
                if (!key.Verify(pae, env.Signatures[0].Sig))
                    throw new CheckupException(SigstoreCodes.DsseSignature, "DSSE envelope signature does not verify over PAE(payloadType, payload) with the signer's key.");
                checks.Add(new SigstoreCheck("dsse-signature", $"DSSE signature over {env.PayloadType} payload verified"));
                CheckInTotoSubject(env, artifact);
                checks.Add(new SigstoreCheck("intoto-subject", $"in-toto subject sha256:{Hex(artifact.Sha256)} matches artifact"));
            }

            // 3. Transparency log entries.
            var times = new List<DateTimeOffset>();
            var logIndexes = new List<long>();
            var needsTsa = false;
            var v2Logs = new List<TransparencyLogInfo>();
            foreach (var entry in bundle.TlogEntries)
            {
                var log = root.FindTlogs(entry.LogId).FirstOrDefault()
                    ?? throw new CheckupException(SigstoreCodes.TlogMissing, $"Transparency log entry {entry.LogIndex} is from log {Convert.ToBase64String(entry.LogId)}, which is not in the trusted root.");
                var isV2 = entry.KindVersion == "0.0.2" && entry.Kind is "hashedrekord" or "dsse";
                needsTsa |= isV2;
                CheckEntryBody(entry, bundle, leaf, key, artifact, paeHash);
                checks.Add(new SigstoreCheck("tlog-entry-body", $"{entry.Kind}/{entry.KindVersion} entry {entry.LogIndex} matches bundle content"));
                var logKey = VerifierKey.FromSpki(log.PublicKeySpki, SigstoreCodes.TrustedRootMalformed);

                if (entry.Proof is null)
                {
                    if (bundle.MinorVersion >= 2 || isV2)
                        throw new CheckupException(SigstoreCodes.TlogInclusion, $"Transparency log entry {entry.LogIndex} has no inclusion proof (required for bundle v0.{bundle.MinorVersion} and Rekor v2 entries; online lookup is not done).");
                }
                else
                {
                    VerifyInclusion(entry, entry.Proof, log, logKey, bundle.MinorVersion);
                    checks.Add(new SigstoreCheck("tlog-inclusion", $"entry {entry.LogIndex} included at index {entry.Proof.LogIndex} of tree size {entry.Proof.TreeSize} (log {log.BaseUrl})"));
                    checks.Add(new SigstoreCheck("checkpoint-signature", $"checkpoint for tree size {entry.Proof.TreeSize} signed by {log.Host}"));
                }

                if (entry.SignedEntryTimestamp is not null && !isV2)
                {
                    var payload = $"{{\"body\":\"{Convert.ToBase64String(entry.CanonicalizedBody)}\",\"integratedTime\":{entry.IntegratedTime.ToString(CultureInfo.InvariantCulture)},\"logID\":\"{Hex(entry.LogId)}\",\"logIndex\":{entry.LogIndex.ToString(CultureInfo.InvariantCulture)}}}";
                    if (!logKey.Verify(Encoding.UTF8.GetBytes(payload), entry.SignedEntryTimestamp))
                        throw new CheckupException(SigstoreCodes.Set, $"Signed entry timestamp of entry {entry.LogIndex} does not verify with the key of {log.BaseUrl}.");
                    checks.Add(new SigstoreCheck("signed-entry-timestamp", $"SET for entry {entry.LogIndex} verified"));
                }

                // The integrated time is only trustworthy when signed (SET); an inclusion proof does not cover it.
                if (!isV2 && entry.IntegratedTime > 0 && entry.SignedEntryTimestamp is not null)
                {
                    var t = DateTimeOffset.FromUnixTimeSeconds(entry.IntegratedTime);
                    if (!log.ValidFor.Contains(t))
                        throw new CheckupException(SigstoreCodes.TlogKeyValidity, $"Entry {entry.LogIndex} integrated time {t:O} is outside the validity {log.ValidFor} of log key {log.BaseUrl}.");
                    times.Add(t);
                    checks.Add(new SigstoreCheck("integrated-time", $"entry {entry.LogIndex} integrated at {t:O}"));
                }
                // Even an unsigned integrated time must not contradict the certificate's validity.
                if (!isV2 && entry.IntegratedTime > 0 && leaf is not null)
                {
                    var t = DateTimeOffset.FromUnixTimeSeconds(entry.IntegratedTime);
                    if (t < leaf.NotBefore.ToUniversalTime() || t > leaf.NotAfter.ToUniversalTime())
                        throw new CheckupException(SigstoreCodes.CertChain, $"Entry {entry.LogIndex} integrated time {t:O} is outside the signing certificate's validity.");
                }
                logIndexes.Add(entry.LogIndex);
                if (isV2) v2Logs.Add(log);
            }

            // 4. RFC 3161 timestamps.
            var tsaCount = 0;
            foreach (var token in bundle.Rfc3161Timestamps)
            {
                var (t, authority) = Rfc3161Verifier.Verify(token, bundle.SignatureBytes, root.TimestampAuthorities);
                times.Add(t);
                tsaCount++;
                checks.Add(new SigstoreCheck("rfc3161-timestamp", $"signature timestamped at {t:O} by {authority}"));
            }
            if (needsTsa && tsaCount == 0)
                throw new CheckupException(SigstoreCodes.TimestampMissing, "Rekor v2 entries carry no integrated time; the bundle needs an RFC 3161 timestamp but has none.");
            foreach (var log in v2Logs)
            {
                if (!times.Any(log.ValidFor.Contains))
                    throw new CheckupException(SigstoreCodes.TlogKeyValidity, $"No verified timestamp falls inside the validity {log.ValidFor} of log key {log.BaseUrl}.");
            }
            if (times.Count == 0)
                throw new CheckupException(SigstoreCodes.TimestampMissing, "No verified time source (integrated time or RFC 3161 timestamp) in the bundle.");

            // 5. Certificate: chain at every verified time, SCT, identity.
            string? identity = null, issuer = null;
            if (leaf is not null)
            {
                var eku = leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
                if (eku is null || !eku.EnhancedKeyUsages.Cast<Oid>().Any(o => o.Value == "1.3.6.1.5.5.7.3.3"))
                    throw new CheckupException(SigstoreCodes.CertChain, "Signing certificate lacks the code-signing extended key usage.");
                var issuerCert = VerifyChain(leaf, root, times, checks);
                try
                {
                    var n = FulcioCertificate.VerifyEmbeddedScts(leaf, issuerCert, root.Ctlogs, out var detail);
                    if (n == 0) throw new CheckupException(SigstoreCodes.Sct, $"Signing certificate has no valid embedded SCT from a trusted CT log ({detail}).");
                    checks.Add(new SigstoreCheck("sct", $"{n} embedded SCT(s) verified ({detail})"));
                }
                finally { issuerCert.Dispose(); }

                var sans = FulcioCertificate.SubjectAlternativeNames(leaf);
                if (!sans.Contains(policy.Identity!, StringComparer.Ordinal))
                    throw new CheckupException(SigstoreCodes.Identity, $"Certificate identity [{string.Join(", ", sans)}] does not match the expected '{policy.Identity}'.");
                identity = policy.Identity;
                issuer = FulcioCertificate.OidcIssuer(leaf);
                if (!string.Equals(issuer, policy.Issuer, StringComparison.Ordinal))
                    throw new CheckupException(SigstoreCodes.Issuer, $"Certificate OIDC issuer '{issuer}' does not match the expected '{policy.Issuer}'.");
                checks.Add(new SigstoreCheck("identity", $"SAN {identity}, issuer {issuer}"));
            }
            else
            {
                checks.Add(new SigstoreCheck("public-key", $"managed key sha256:{Hex(SHA256.HashData(key.Spki))}"));
            }
            return new SigstoreVerificationResult(identity, issuer, logIndexes, times, checks);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or CryptographicException or System.Formats.Asn1.AsnContentException or ArgumentException or InvalidOperationException or NotSupportedException or OverflowException or IOException)
        {
            throw new CheckupException(SigstoreCodes.BundleMalformed, $"Bundle content could not be processed: {ex.Message}", ex);
        }
        finally
        {
            leaf?.Dispose();
        }
    }

    /// <summary>DSSE pre-authentication encoding: "DSSEv1 len(type) type len(body) body".</summary>
    public static byte[] Pae(string payloadType, byte[] payload)
    {
        var t = Encoding.UTF8.GetBytes(payloadType);
        var head = Encoding.UTF8.GetBytes($"DSSEv1 {t.Length} {payloadType} {payload.Length} ");
        return [.. head, .. payload];
    }

    private static void CheckInTotoSubject(DsseEnvelope env, ArtifactInput artifact)
    {
        const string C = SigstoreCodes.ArtifactMismatch;
        if (env.PayloadType != InTotoPayloadType)
            throw new CheckupException(C, $"DSSE payload type '{env.PayloadType}' is not in-toto; cannot bind it to the artifact.");
        var want = Hex(artifact.Sha256);
        try
        {
            using var doc = JsonDocument.Parse(env.Payload, new JsonDocumentOptions { MaxDepth = SigstoreJson.MaxDepth });
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("subject", out var subj) && subj.ValueKind == JsonValueKind.Array)
            {
                foreach (var s in subj.EnumerateArray())
                {
                    if (s.ValueKind == JsonValueKind.Object && s.TryGetProperty("digest", out var d) && d.ValueKind == JsonValueKind.Object
                        && d.TryGetProperty("sha256", out var h) && h.ValueKind == JsonValueKind.String
                        && string.Equals(h.GetString(), want, StringComparison.OrdinalIgnoreCase))
                        return;
                }
            }
        }
        catch (JsonException ex)
        {
            throw new CheckupException(C, $"DSSE payload is not a valid in-toto statement: {ex.Message}", ex);
        }
        throw new CheckupException(C, $"No in-toto subject has sha256 {want} (the artifact's digest).");
    }

    private static void VerifyInclusion(TlogEntry entry, InclusionProof proof, TransparencyLogInfo log, VerifierKey logKey, int minor)
    {
        const string C = SigstoreCodes.TlogInclusion;
        var leafHash = Merkle.LeafHash(entry.CanonicalizedBody);
        var computed = Merkle.RootFromInclusionProof(proof.LogIndex, proof.TreeSize, leafHash, proof.Hashes);
        if (computed is null)
            throw new CheckupException(C, $"Inclusion proof for entry {entry.LogIndex} has the wrong shape (index {proof.LogIndex}, tree size {proof.TreeSize}, {proof.Hashes.Count} hashes).");
        if (!computed.AsSpan().SequenceEqual(proof.RootHash))
            throw new CheckupException(C, $"Inclusion proof for entry {entry.LogIndex} recomputes root {Convert.ToBase64String(computed)}, not the claimed {Convert.ToBase64String(proof.RootHash)}.");
        if (proof.Checkpoint is null)
        {
            if (minor >= 2) throw new CheckupException(C, $"Inclusion proof for entry {entry.LogIndex} has no checkpoint.");
            return;
        }
        var cp = Checkpoint.Parse(proof.Checkpoint);
        if (cp.TreeSize != proof.TreeSize || !cp.RootHash.AsSpan().SequenceEqual(proof.RootHash))
            throw new CheckupException(C, $"Checkpoint (size {cp.TreeSize}) does not commit to the inclusion proof's root and tree size {proof.TreeSize}.");
        VerifyCheckpointSignature(cp, log, logKey);
    }

    /// <summary>Requires a checkpoint signature by the log: signer name = log host, key hint = first 4 bytes of the log id, valid signature.</summary>
    internal static void VerifyCheckpointSignature(Checkpoint cp, TransparencyLogInfo log, VerifierKey logKey)
    {
        const string C = SigstoreCodes.CheckpointSignature;
        var host = log.Host;
        if (host.Length > 0 && cp.Origin != host && !cp.Origin.StartsWith(host + " - ", StringComparison.Ordinal))
            throw new CheckupException(C, $"Checkpoint origin '{cp.Origin}' is not the log {host}.");
        var hint = log.LogId.AsSpan(0, 4).ToArray();
        var candidates = cp.Signatures.Where(s => s.KeyHint.AsSpan().SequenceEqual(hint) && (host.Length == 0 || s.Name == host)).ToList();
        if (candidates.Count == 0)
            throw new CheckupException(C, $"Checkpoint has no signature line from log {host} with key hint {Hex(hint)} (found: {string.Join(", ", cp.Signatures.Select(s => $"{s.Name}/{Hex(s.KeyHint)}"))}).");
        var text = Encoding.UTF8.GetBytes(cp.SignedText);
        foreach (var s in candidates)
        {
            if (logKey.Verify(text, s.Signature)) return;
        }
        throw new CheckupException(C, $"Checkpoint signature from {host} does not verify with the log key.");
    }

    private static X509Certificate2 VerifyChain(X509Certificate2 leaf, TrustedRoot root, List<DateTimeOffset> times, List<SigstoreCheck> checks)
    {
        var reasons = new List<string>();
        foreach (var ca in root.CertificateAuthorities)
        {
            var bad = times.FirstOrDefault(t => !ca.ValidFor.Contains(t));
            if (bad != default) { reasons.Add($"{ca.Uri}: time {bad:O} outside CA validity {ca.ValidFor}"); continue; }
            var chain = new List<byte[]> { leaf.RawData };
            chain.AddRange(ca.CertChain);
            var ok = true;
            foreach (var t in times)
            {
                if (!Rfc3161Verifier.ChainValidAt(chain, t, out var why)) { reasons.Add($"{ca.Uri}: at {t:O}: {why}"); ok = false; break; }
            }
            if (!ok) continue;
            checks.Add(new SigstoreCheck("certificate-chain", $"chains to {ca.Subject} ({ca.Uri}) at {string.Join(", ", times.Select(t => t.ToString("O")))}"));
            return X509CertificateLoader.LoadCertificate(ca.CertChain[0]);
        }
        throw new CheckupException(SigstoreCodes.CertChain,
            $"Signing certificate (valid {leaf.NotBefore.ToUniversalTime():O} to {leaf.NotAfter.ToUniversalTime():O}) does not chain to a trusted Fulcio CA at every verified time: {string.Join("; ", reasons)}.");
    }

    private static void CheckEntryBody(TlogEntry entry, SigstoreBundle bundle, X509Certificate2? leaf, VerifierKey key, ArtifactInput artifact, byte[]? paeHash)
    {
        const string C = SigstoreCodes.TlogEntryMismatch;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(entry.CanonicalizedBody, new JsonDocumentOptions { MaxDepth = SigstoreJson.MaxDepth }); }
        catch (JsonException ex) { throw new CheckupException(SigstoreCodes.BundleMalformed, $"Entry {entry.LogIndex} canonicalized body is not JSON: {ex.Message}", ex); }
        using (doc)
        {
            var b = doc.RootElement;
            if (b.ValueKind != JsonValueKind.Object) throw new CheckupException(C, $"Entry {entry.LogIndex} body is not a JSON object.");
            var kind = Str(b, "kind");
            var api = Str(b, "apiVersion");
            if (kind != entry.Kind || api != entry.KindVersion)
                throw new CheckupException(C, $"Entry {entry.LogIndex} body is {kind}/{api} but kindVersion says {entry.Kind}/{entry.KindVersion}.");
            var spec = Obj(b, "spec");
            var sig = bundle.SignatureBytes;
            switch (kind, api)
            {
                case ("hashedrekord", "0.0.1"):
                {
                    if (bundle.MessageSignature is null) throw new CheckupException(C, "hashedrekord/0.0.1 entry cannot attest a DSSE envelope.");
                    var hash = Obj(Obj(spec, "data"), "hash");
                    if (Str(hash, "algorithm") != "sha256" || !string.Equals(Str(hash, "value"), Hex(artifact.Sha256), StringComparison.OrdinalIgnoreCase))
                        throw new CheckupException(C, $"hashedrekord entry {entry.LogIndex} records digest {Str(hash, "value")}, not the artifact's {Hex(artifact.Sha256)}.");
                    var s = Obj(spec, "signature");
                    if (!B64(Str(s, "content")).AsSpan().SequenceEqual(sig))
                        throw new CheckupException(C, $"hashedrekord entry {entry.LogIndex} records a different signature than the bundle.");
                    RequireSameSigner(Encoding.UTF8.GetString(B64(Str(Obj(s, "publicKey"), "content"))), leaf, key, entry);
                    break;
                }
                case ("hashedrekord", "0.0.2"):
                {
                    var v = Obj(spec, "hashedRekordV002");
                    var data = Obj(v, "data");
                    var expected = paeHash ?? artifact.Sha256;
                    if (Str(data, "algorithm") != "SHA2_256" || !B64(Str(data, "digest")).AsSpan().SequenceEqual(expected))
                        throw new CheckupException(C, $"hashedrekord/0.0.2 entry {entry.LogIndex} records a digest that is not the {(paeHash is null ? "artifact's" : "DSSE PAE's")} SHA-256.");
                    var s = Obj(v, "signature");
                    if (!B64(Str(s, "content")).AsSpan().SequenceEqual(sig))
                        throw new CheckupException(C, $"hashedrekord/0.0.2 entry {entry.LogIndex} records a different signature than the bundle.");
                    RequireSameVerifierV2(Obj(s, "verifier"), leaf, key, entry);
                    break;
                }
                case ("dsse", "0.0.1"):
                {
                    var env = bundle.Dsse ?? throw new CheckupException(C, "dsse entry cannot attest a message signature.");
                    var ph = Obj(spec, "payloadHash");
                    if (Str(ph, "algorithm") != "sha256" || !string.Equals(Str(ph, "value"), Hex(SHA256.HashData(env.Payload)), StringComparison.OrdinalIgnoreCase))
                        throw new CheckupException(C, $"dsse entry {entry.LogIndex} payload hash does not match the envelope payload.");
                    var found = false;
                    foreach (var es in Arr(spec, "signatures"))
                    {
                        if (!B64(Str(es, "signature")).AsSpan().SequenceEqual(sig)) continue;
                        RequireSameSigner(Encoding.UTF8.GetString(B64(Str(es, "verifier"))), leaf, key, entry);
                        found = true;
                    }
                    if (!found) throw new CheckupException(C, $"dsse entry {entry.LogIndex} does not record the envelope's signature.");
                    break;
                }
                case ("dsse", "0.0.2"):
                {
                    var env = bundle.Dsse ?? throw new CheckupException(C, "dsse entry cannot attest a message signature.");
                    var v = Obj(spec, "dsseV002");
                    var ph = Obj(v, "payloadHash");
                    if (Str(ph, "algorithm") != "SHA2_256" || !B64(Str(ph, "digest")).AsSpan().SequenceEqual(SHA256.HashData(env.Payload)))
                        throw new CheckupException(C, $"dsse/0.0.2 entry {entry.LogIndex} payload hash does not match the envelope payload.");
                    var found = false;
                    foreach (var es in Arr(v, "signatures"))
                    {
                        if (!B64(Str(es, "content")).AsSpan().SequenceEqual(sig)) continue;
                        RequireSameVerifierV2(Obj(es, "verifier"), leaf, key, entry);
                        found = true;
                    }
                    if (!found) throw new CheckupException(C, $"dsse/0.0.2 entry {entry.LogIndex} does not record the envelope's signature.");
                    break;
                }
                case ("intoto", "0.0.2"):
                {
                    var env = bundle.Dsse ?? throw new CheckupException(C, "intoto entry cannot attest a message signature.");
                    var content = Obj(spec, "content");
                    var ph = Obj(content, "payloadHash");
                    if (Str(ph, "algorithm") != "sha256" || !string.Equals(Str(ph, "value"), Hex(SHA256.HashData(env.Payload)), StringComparison.OrdinalIgnoreCase))
                        throw new CheckupException(C, $"intoto entry {entry.LogIndex} payload hash does not match the envelope payload.");
                    var e = Obj(content, "envelope");
                    var found = false;
                    foreach (var es in Arr(e, "signatures"))
                    {
                        // intoto/0.0.2 stores sig and publicKey base64-encoded once more.
                        var once = B64(Str(es, "sig"));
                        var match = once.AsSpan().SequenceEqual(sig) || Encoding.ASCII.GetString(once) == Convert.ToBase64String(sig);
                        if (!match) continue;
                        RequireSameSigner(Encoding.UTF8.GetString(B64(Str(es, "publicKey"))), leaf, key, entry);
                        found = true;
                    }
                    if (!found) throw new CheckupException(C, $"intoto entry {entry.LogIndex} does not record the envelope's signature.");
                    break;
                }
                default:
                    throw new CheckupException(C, $"Unsupported transparency log entry type {kind}/{api}.");
            }
        }
    }

    private static void RequireSameSigner(string pem, X509Certificate2? leaf, VerifierKey key, TlogEntry entry)
    {
        var fields = PemEncoding.Find(pem);
        var der = Convert.FromBase64String(pem[fields.Base64Data]);
        var label = pem[fields.Label];
        bool same = label switch
        {
            "CERTIFICATE" => leaf is not null && der.AsSpan().SequenceEqual(leaf.RawData),
            "PUBLIC KEY" => leaf is null && der.AsSpan().SequenceEqual(key.Spki),
            _ => false,
        };
        if (!same) throw new CheckupException(SigstoreCodes.TlogEntryMismatch, $"Entry {entry.LogIndex} records a different signing {(label == "CERTIFICATE" ? "certificate" : "key")} than the bundle/policy.");
    }

    private static void RequireSameVerifierV2(JsonElement verifier, X509Certificate2? leaf, VerifierKey key, TlogEntry entry)
    {
        bool same;
        if (verifier.TryGetProperty("x509Certificate", out var xc))
            same = leaf is not null && B64(Str(xc, "rawBytes")).AsSpan().SequenceEqual(leaf.RawData);
        else if (verifier.TryGetProperty("publicKey", out var pk))
            same = leaf is null && B64(Str(pk, "rawBytes")).AsSpan().SequenceEqual(key.Spki);
        else same = false;
        if (!same) throw new CheckupException(SigstoreCodes.TlogEntryMismatch, $"Entry {entry.LogIndex} records a different verifier (certificate/key) than the bundle/policy.");
    }

    private static JsonElement Obj(JsonElement e, string name)
        => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Object
            ? v : throw new CheckupException(SigstoreCodes.TlogEntryMismatch, $"Transparency log entry body lacks object '{name}'.");

    private static string Str(JsonElement e, string name)
        => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String
            ? v.GetString()! : throw new CheckupException(SigstoreCodes.TlogEntryMismatch, $"Transparency log entry body lacks string '{name}'.");

    private static IEnumerable<JsonElement> Arr(JsonElement e, string name)
        => e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
            ? v.EnumerateArray() : throw new CheckupException(SigstoreCodes.TlogEntryMismatch, $"Transparency log entry body lacks array '{name}'.");

    private static byte[] B64(string s) => SigstoreJson.B64(s, SigstoreCodes.TlogEntryMismatch, "entry body field");

    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);
}
