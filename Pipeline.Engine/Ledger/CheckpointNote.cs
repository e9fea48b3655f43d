using System.Globalization;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Attestations;

namespace Pipeline.Engine.Ledger;

/// <summary>A verified checkpoint: the log's size and root as signed by a trusted key.</summary>
public sealed record SignedCheckpoint(string Origin, long TreeSize, byte[] RootHash, string Note, string KeyId)
{
    public string RootHex => Convert.ToHexStringLower(RootHash);
}

/// <summary>
/// Checkpoints in C2SP signed-note format: "origin\nsize\nbase64(root)\n", a blank line, then
/// "— name base64(keyHint || signature)". The signature is ECDSA P-256 / SHA-256 over the text
/// part (the three lines with their newlines); the key hint is the first 4 bytes of SHA-256(SPKI).
/// Parsing reuses the Sigstore checkpoint parser.
/// </summary>
public static class CheckpointNote
{
    public const string DefaultSignerName = "pipeline-engine";

    public static string Sign(string origin, long size, byte[] root, EngineSigningKey key, string signerName = DefaultSignerName)
    {
        if (origin.Length == 0 || origin.Contains('\n') || signerName.Contains(' ') || signerName.Contains('\n'))
            throw new ArgumentException("origin and signer name must be single non-empty lines; the signer name has no spaces");
        var text = $"{origin}\n{size.ToString(CultureInfo.InvariantCulture)}\n{Convert.ToBase64String(root)}\n";
        var sig = key.Sign(Encoding.UTF8.GetBytes(text));
        return $"{text}\n\u2014 {signerName} {Convert.ToBase64String([.. key.Public.KeyHint, .. sig])}\n";
    }

    /// <summary>
    /// Parses and verifies a checkpoint note against trusted keys.
    /// </summary>
    /// <exception cref="PipelineException">LOG-CHECKPOINT-MALFORMED, LOG-CHECKPOINT-KEY-UNKNOWN, LOG-CHECKPOINT-SIGNATURE, LOG-CHECKPOINT-ORIGIN.</exception>
    public static SignedCheckpoint Verify(string note, KeyRing keys, string? expectedOrigin = null)
    {
        Checkpoint cp;
        try
        {
            cp = Checkpoint.Parse(note);
        }
        catch (CheckupException e)
        {
            throw new PipelineException("LOG-CHECKPOINT-MALFORMED", $"not a checkpoint note: {e.Message}");
        }

        if (expectedOrigin is not null && cp.Origin != expectedOrigin)
            throw new PipelineException("LOG-CHECKPOINT-ORIGIN", $"checkpoint is for log '{cp.Origin}', not '{expectedOrigin}'");
        var text = Encoding.UTF8.GetBytes(cp.SignedText);
        var known = false;
        foreach (var s in cp.Signatures)
        {
            if (keys.FindByHint(s.KeyHint) is not { } key) continue;
            known = true;
            if (key.Verify(text, s.Signature)) return new SignedCheckpoint(cp.Origin, cp.TreeSize, cp.RootHash, note, key.KeyId);
        }

        throw known
            ? new PipelineException("LOG-CHECKPOINT-SIGNATURE", $"the signature of the checkpoint at size {cp.TreeSize} does not verify with the trusted key")
            : new PipelineException("LOG-CHECKPOINT-KEY-UNKNOWN", $"the checkpoint at size {cp.TreeSize} is not signed by any trusted key");
    }
}
