using System.Security.Cryptography;
using System.Text;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;
using DsseEnvelope = Pipeline.Engine.Attestations.DsseEnvelope;

namespace Pipeline.Tests.Engine.Attestations;

public class DsseAndCheckpointTests
{
    private static InTotoStatement Statement() => new(
        [ResourceDescriptor.Of("img", "sha256", new string('a', 64))], PredicateTypes.ForStage("scan"),
        new System.Text.Json.Nodes.JsonObject { ["stage"] = "scan", ["verdict"] = "passed" });

    [Test]
    public void An_envelope_verifies_with_the_engine_key_and_its_key_id_is_the_sha256_of_the_spki()
    {
        using var key = EngineSigningKey.Generate();
        var env = DsseEnvelope.Sign(DsseEnvelope.InTotoPayloadType, Statement().ToJsonBytes(), key);
        var parsed = DsseEnvelope.Parse(env.CanonicalBytes());
        Assert.That(parsed.Verify(new KeyRing([key.Public])).KeyId, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(key.Public.Spki))));
        Assert.That(InTotoStatement.Parse(parsed.Payload).Subjects[0].DigestStrings.Single(), Is.EqualTo("sha256:" + new string('a', 64)));
    }

    [Test]
    public void A_changed_payload_or_payload_type_fails_the_signature_check()
    {
        using var key = EngineSigningKey.Generate();
        var env = DsseEnvelope.Sign(DsseEnvelope.InTotoPayloadType, Statement().ToJsonBytes(), key);
        var payload = (byte[])env.Payload.Clone();
        payload[10] ^= 1;
        var e = Assert.Throws<PipelineException>(() => (env with { Payload = payload }).Verify(new KeyRing([key.Public])))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("ATT-SIGNATURE-INVALID", $"the envelope signature by key {key.KeyId[..16]} does not verify over PAE(payloadType, payload)")));
        e = Assert.Throws<PipelineException>(() => (env with { PayloadType = "application/json" }).Verify(new KeyRing([key.Public])))!;
        Assert.That(e.Code, Is.EqualTo("ATT-SIGNATURE-INVALID"), "the payload type is bound by PAE");
    }

    [Test]
    public void An_envelope_by_an_untrusted_key_is_refused()
    {
        using var key = EngineSigningKey.Generate();
        using var other = EngineSigningKey.Generate();
        var env = DsseEnvelope.Sign(DsseEnvelope.InTotoPayloadType, Statement().ToJsonBytes(), other);
        var e = Assert.Throws<PipelineException>(() => env.Verify(new KeyRing([key.Public])))!;
        Assert.That(e.Code, Is.EqualTo("ATT-KEY-UNKNOWN"));
        Assert.That(e.Message, Does.Contain(other.KeyId[..16]));
    }

    [Test]
    public void Non_canonical_envelope_bytes_are_rejected_so_each_envelope_has_one_leaf_hash()
    {
        using var key = EngineSigningKey.Generate();
        var bytes = DsseEnvelope.Sign(DsseEnvelope.InTotoPayloadType, Statement().ToJsonBytes(), key).CanonicalBytes();
        var spaced = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace("\",\"", "\", \""));
        var e = Assert.Throws<PipelineException>(() => DsseEnvelope.Parse(spaced))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("ATT-ENVELOPE-MALFORMED", "DSSE envelope bytes are not in canonical form (extra fields, order or whitespace changed)")));
        Assert.That(Assert.Throws<PipelineException>(() => DsseEnvelope.Parse("{\"payload\":1}"u8.ToArray()))!.Code, Is.EqualTo("ATT-ENVELOPE-MALFORMED"));
    }

    [Test]
    public void A_checkpoint_note_is_a_C2SP_signed_note_the_sigstore_parser_reads_and_our_key_verifies()
    {
        using var key = EngineSigningKey.Generate();
        var root = SHA256.HashData("root"u8);
        var note = CheckpointNote.Sign("example.org/ledger", 42, root, key);
        var lines = note.Split('\n');
        Assert.That(lines[..4], Is.EqualTo(new[] { "example.org/ledger", "42", Convert.ToBase64String(root), "" }));
        Assert.That(lines[4], Does.StartWith("\u2014 pipeline-engine "));
        var parsed = Checkpoint.Parse(note);
        Assert.That(parsed.Signatures[0].KeyHint, Is.EqualTo(SHA256.HashData(key.Public.Spki)[..4]));
        var cp = CheckpointNote.Verify(note, new KeyRing([key.Public]), "example.org/ledger");
        Assert.That((cp.TreeSize, cp.RootHash, cp.KeyId), Is.EqualTo((42L, root, key.KeyId)));
    }

    [Test]
    public void A_checkpoint_with_a_changed_size_root_origin_or_key_is_refused()
    {
        using var key = EngineSigningKey.Generate();
        using var other = EngineSigningKey.Generate();
        var keys = new KeyRing([key.Public]);
        var note = CheckpointNote.Sign("example.org/ledger", 42, SHA256.HashData("root"u8), key);
        Assert.That(Assert.Throws<PipelineException>(() => CheckpointNote.Verify(note.Replace("\n42\n", "\n43\n"), keys))!.Code, Is.EqualTo("LOG-CHECKPOINT-SIGNATURE"));
        var otherRoot = note.Replace(Convert.ToBase64String(SHA256.HashData("root"u8)), Convert.ToBase64String(SHA256.HashData("toor"u8)));
        Assert.That(Assert.Throws<PipelineException>(() => CheckpointNote.Verify(otherRoot, keys))!.Code, Is.EqualTo("LOG-CHECKPOINT-SIGNATURE"));
        Assert.That(Assert.Throws<PipelineException>(() => CheckpointNote.Verify(note, keys, "other.org/ledger"))!.Code, Is.EqualTo("LOG-CHECKPOINT-ORIGIN"));
        var forged = CheckpointNote.Sign("example.org/ledger", 42, SHA256.HashData("root"u8), other);
        Assert.That(Assert.Throws<PipelineException>(() => CheckpointNote.Verify(forged, keys))!.Code, Is.EqualTo("LOG-CHECKPOINT-KEY-UNKNOWN"));
        Assert.That(Assert.Throws<PipelineException>(() => CheckpointNote.Verify("garbage", keys))!.Code, Is.EqualTo("LOG-CHECKPOINT-MALFORMED"));
    }

    [Test]
    public void Keys_load_from_PEM_files_written_by_openssl_and_a_public_key_alone_cannot_sign()
    {
        using var dir = new TempDir("engine-keys-");
        var priv = dir.Combine("engine.pem");
        Shell.Run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", priv]).EnsureSuccess("openssl ecparam");
        var pub = dir.Combine("engine.pub.pem");
        Shell.Run("openssl", ["ec", "-in", priv, "-pubout", "-out", pub]).EnsureSuccess("openssl ec -pubout");
        using var key = EngineSigningKey.FromPemFile(priv);
        Assert.That(VerificationKey.FromPemFile(pub).KeyId, Is.EqualTo(key.KeyId));
        var der = Shell.Run("sh", ["-c", $"openssl ec -in '{priv}' -pubout -outform DER 2>/dev/null | sha256sum"]).Stdout.Split(' ')[0];
        Assert.That(key.KeyId, Is.EqualTo(der), "key id = sha256 of the SubjectPublicKeyInfo DER, as openssl computes it");
        Assert.That(Assert.Throws<PipelineException>(() => EngineSigningKey.FromPemFile(pub))!.Code, Is.EqualTo("ATT-KEY-INVALID"));
        var rsa = dir.Combine("rsa.pem");
        Shell.Run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", rsa]).EnsureSuccess("openssl rsa");
        Assert.That(Assert.Throws<PipelineException>(() => EngineSigningKey.FromPemFile(rsa))!.Code, Is.EqualTo("ATT-KEY-INVALID"));
    }
}
