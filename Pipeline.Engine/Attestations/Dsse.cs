using System.Text;
using System.Text.Json;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Engine.Attestations;

/// <summary>One DSSE signature: the signer's key id and the signature over PAE(payloadType, payload).</summary>
public sealed record DsseSignature(string KeyId, byte[] Sig);

/// <summary>
/// A DSSE envelope. <see cref="CanonicalBytes"/> (compact JSON, fixed key order, standard base64)
/// are what the transparency log stores and hashes as the leaf.
/// </summary>
public sealed record DsseEnvelope(string PayloadType, byte[] Payload, IReadOnlyList<DsseSignature> Signatures)
{
    public const string InTotoPayloadType = "application/vnd.in-toto+json";
    public const int MaxBytes = 4 << 20;

    /// <summary>Signs <paramref name="payload"/> with the engine key.</summary>
    public static DsseEnvelope Sign(string payloadType, byte[] payload, EngineSigningKey key) =>
        new(payloadType, payload, [new DsseSignature(key.KeyId, key.Sign(SigstoreVerifier.Pae(payloadType, payload)))]);

    public byte[] CanonicalBytes()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("payload", Convert.ToBase64String(Payload));
            w.WriteString("payloadType", PayloadType);
            w.WriteStartArray("signatures");
            foreach (var s in Signatures)
            {
                w.WriteStartObject();
                w.WriteString("keyid", s.KeyId);
                w.WriteString("sig", Convert.ToBase64String(s.Sig));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Parses an envelope and insists the bytes are canonical (so one envelope has one leaf hash).</summary>
    /// <exception cref="PipelineException">ATT-ENVELOPE-MALFORMED.</exception>
    public static DsseEnvelope Parse(byte[] bytes)
    {
        const string C = "ATT-ENVELOPE-MALFORMED";
        if (bytes.Length > MaxBytes) throw new PipelineException(C, $"DSSE envelope is {bytes.Length} bytes; more than {MaxBytes} is not accepted");
        DsseEnvelope env;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            var sigs = root.GetProperty("signatures").EnumerateArray()
                .Select(s => new DsseSignature(s.GetProperty("keyid").GetString()!, Convert.FromBase64String(s.GetProperty("sig").GetString()!)))
                .ToList();
            env = new DsseEnvelope(root.GetProperty("payloadType").GetString()!, Convert.FromBase64String(root.GetProperty("payload").GetString()!), sigs);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or NullReferenceException)
        {
            throw new PipelineException(C, $"not a DSSE envelope: {e.GetType().Name}");
        }

        if (!env.CanonicalBytes().AsSpan().SequenceEqual(bytes))
            throw new PipelineException(C, "DSSE envelope bytes are not in canonical form (extra fields, order or whitespace changed)");
        return env;
    }

    /// <summary>
    /// Checks that a signature by a key in <paramref name="keys"/> verifies over PAE; returns that
    /// key, or throws ATT-SIGNATURE-INVALID / ATT-KEY-UNKNOWN.
    /// </summary>
    public VerificationKey Verify(KeyRing keys)
    {
        if (Signatures.Count == 0) throw new PipelineException("ATT-SIGNATURE-INVALID", "the envelope carries no signature");
        var pae = SigstoreVerifier.Pae(PayloadType, Payload);
        var unknown = new List<string>();
        foreach (var s in Signatures)
        {
            if (keys.Find(s.KeyId) is not { } key)
            {
                unknown.Add(s.KeyId);
                continue;
            }

            if (key.Verify(pae, s.Sig)) return key;
            throw new PipelineException("ATT-SIGNATURE-INVALID", $"the envelope signature by key {s.KeyId[..16]} does not verify over PAE(payloadType, payload)");
        }

        throw new PipelineException("ATT-KEY-UNKNOWN", $"the envelope is signed by key(s) {string.Join(", ", unknown.Select(u => u.Length > 16 ? u[..16] : u))} that are not among the trusted verification keys");
    }

    public string PayloadText => Encoding.UTF8.GetString(Payload);
}
