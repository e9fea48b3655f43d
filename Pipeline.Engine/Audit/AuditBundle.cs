using System.Text.Json;
using System.Text.Json.Nodes;
using Merkle = Pipeline.Checkup.Signatures.Sigstore.Merkle;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>One log entry in a bundle: its index, canonical envelope bytes and inclusion proof.</summary>
public sealed record AuditBundleEntry(long LogIndex, byte[] Envelope, IReadOnlyList<byte[]> InclusionProof);

/// <summary>
/// A self-contained audit bundle (JSON, media type <see cref="MediaType"/>): the subject image
/// digest, a signed checkpoint, the public keys, and every entry with its inclusion proof. It is
/// verified with no database (<see cref="AuditBundleVerifier"/>).
/// </summary>
public sealed record AuditBundle(string Subject, string CheckpointNote, IReadOnlyList<VerificationKey> PublicKeys, IReadOnlyList<AuditBundleEntry> Entries)
{
    public const string MediaType = "application/vnd.pipeline.audit-bundle.v1+json";
    public const int MaxBytes = 64 << 20;

    public byte[] ToJsonBytes()
    {
        var o = new JsonObject
        {
            ["mediaType"] = MediaType,
            ["subject"] = Subject,
            ["checkpoint"] = CheckpointNote,
            ["publicKeys"] = new JsonArray(PublicKeys.Select(k => (JsonNode)new JsonObject { ["keyId"] = k.KeyId, ["pem"] = k.PublicKeyPem }).ToArray()),
            ["entries"] = new JsonArray(Entries.Select(e => (JsonNode)new JsonObject
            {
                ["logIndex"] = e.LogIndex,
                ["envelope"] = Convert.ToBase64String(e.Envelope),
                ["inclusionProof"] = new JsonArray(e.InclusionProof.Select(p => (JsonNode)Convert.ToHexStringLower(p)).ToArray()),
            }).ToArray()),
        };
        return JsonSerializer.SerializeToUtf8Bytes(o, new JsonSerializerOptions { WriteIndented = true });
    }

    /// <exception cref="PipelineException">BUNDLE-MALFORMED.</exception>
    public static AuditBundle Parse(byte[] json)
    {
        const string C = "BUNDLE-MALFORMED";
        if (json.Length > MaxBytes) throw new PipelineException(C, $"the bundle is larger than {MaxBytes} bytes");
        try
        {
            var o = JsonNode.Parse(json) as JsonObject ?? throw new PipelineException(C, "the bundle is not a JSON object");
            if (o["mediaType"]?.GetValue<string>() != MediaType) throw new PipelineException(C, $"the bundle's mediaType is not {MediaType}");
            var keys = (o["publicKeys"] as JsonArray ?? []).Select(k =>
            {
                var pem = k!["pem"]!.GetValue<string>();
                var f = System.Security.Cryptography.PemEncoding.Find(pem);
                var key = VerificationKey.FromSpki(Convert.FromBase64String(pem[f.Base64Data]));
                if (key.KeyId != k["keyId"]?.GetValue<string>()) throw new PipelineException(C, "a public key's keyId is not the SHA-256 of its SubjectPublicKeyInfo");
                return key;
            }).ToList();
            var entries = (o["entries"] as JsonArray ?? throw new PipelineException(C, "the bundle has no entries")).Select(e => new AuditBundleEntry(
                e!["logIndex"]!.GetValue<long>(),
                Convert.FromBase64String(e["envelope"]!.GetValue<string>()),
                (e["inclusionProof"] as JsonArray ?? []).Select(p => Convert.FromHexString(p!.GetValue<string>())).ToList())).ToList();
            return new AuditBundle(o["subject"]?.GetValue<string>() ?? throw new PipelineException(C, "the bundle has no subject"),
                o["checkpoint"]?.GetValue<string>() ?? throw new PipelineException(C, "the bundle has no checkpoint"), keys, entries);
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or NullReferenceException)
        {
            throw new PipelineException(C, $"the bundle is not valid: {e.GetType().Name}: {e.Message}");
        }
    }
}

/// <summary>The result of verifying a bundle offline: the trace it proves, and every problem.</summary>
public sealed record BundleVerification(string Subject, SignedCheckpoint? Checkpoint, IReadOnlyList<string> TrustedKeyIds, IReadOnlyList<TraceStep> Steps, IReadOnlyList<AuditProblem> Problems)
{
    public bool Ok => Problems.Count == 0 && Steps.Count > 0;
}

/// <summary>Verifies an audit bundle with no database: checkpoint signature, each envelope's signature and inclusion, the subject, and the links between stages.</summary>
public static class AuditBundleVerifier
{
    /// <param name="trusted">Keys the auditor trusts; null trusts the keys in the bundle (then compare the printed key ids with the engine's published ones).</param>
    /// <param name="origin">The expected log origin, or null for any.</param>
    public static BundleVerification Verify(AuditBundle bundle, KeyRing? trusted, string? origin = null)
    {
        var keys = trusted ?? new KeyRing(bundle.PublicKeys);
        var problems = new List<AuditProblem>();
        SignedCheckpoint? cp = null;
        try
        {
            cp = CheckpointNote.Verify(bundle.CheckpointNote, keys, origin);
        }
        catch (PipelineException e)
        {
            problems.Add(new AuditProblem(e.Code, "checkpoint: " + e.Message));
        }

        var steps = new List<TraceStep>();
        var earlier = new HashSet<string>(StringComparer.Ordinal);
        var subjectSeen = false;
        foreach (var entry in bundle.Entries.OrderBy(e => e.LogIndex))
        {
            var p = new List<AuditProblem>();
            InTotoStatement statement;
            VerificationKey key;
            try
            {
                var env = DsseEnvelope.Parse(entry.Envelope);
                if (env.PayloadType != DsseEnvelope.InTotoPayloadType) throw new PipelineException("ATT-PAYLOAD-TYPE", $"payload type '{env.PayloadType}' is not in-toto");
                key = env.Verify(keys);
                statement = InTotoStatement.Parse(env.Payload);
            }
            catch (PipelineException e)
            {
                problems.Add(new AuditProblem(e.Code, $"entry {entry.LogIndex}: {e.Message}", entry.LogIndex));
                continue;
            }

            var included = cp is not null && MerkleProofs.VerifyInclusion(entry.LogIndex, cp.TreeSize, Merkle.LeafHash(entry.Envelope), entry.InclusionProof, cp.RootHash);
            if (cp is not null && !included)
                p.Add(new AuditProblem("LOG-INCLUSION", $"entry {entry.LogIndex} is not included in the checkpoint at size {cp.TreeSize} (changed envelope, wrong proof or wrong checkpoint)", entry.LogIndex));
            var unlinked = statement.Materials.Where(m => m.Uri?.StartsWith("oci://", StringComparison.Ordinal) != true)
                .SelectMany(m => m.DigestStrings).Where(d => !earlier.Contains(d)).ToList();
            if (unlinked.Count > 0)
                p.Add(new AuditProblem("TRACE-UNLINKED", $"entry {entry.LogIndex} consumed {string.Join(", ", unlinked)} which no earlier entry in the bundle produced", entry.LogIndex));
            foreach (var s in statement.Subjects.SelectMany(x => x.DigestStrings)) earlier.Add(s);
            if (statement.Subjects.Any(s => s.DigestStrings.Contains(bundle.Subject))) subjectSeen = true;
            var leaf = new LogLeaf(entry.LogIndex, Merkle.LeafHash(entry.Envelope), entry.Envelope, null, "", null, "", "", statement.PredicateType, key.KeyId, [], [], DateTimeOffset.MinValue);
            var record = AuditRecord.From(leaf, statement, key.KeyId);
            steps.Add(new TraceStep(record, true, included, unlinked, p));
            problems.AddRange(p);
        }

        if (!subjectSeen) problems.Add(new AuditProblem("BUNDLE-SUBJECT", $"no verified entry in the bundle has {bundle.Subject} as its subject"));
        return new BundleVerification(bundle.Subject, cp, keys.Keys.Select(k => k.KeyId).ToList(), steps, problems);
    }
}
