using System.Globalization;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>One signature line of a C2SP signed note: signer name, 4-byte key hint, signature bytes.</summary>
public sealed record NoteSignature(string Name, byte[] KeyHint, byte[] Signature);

/// <summary>
/// A transparency-log checkpoint in C2SP signed-note format: origin, tree size, root hash, optional
/// extension lines, a blank line, then one or more "— name base64(hint||sig)" lines.
/// </summary>
public sealed record Checkpoint(string Origin, long TreeSize, byte[] RootHash, string SignedText, IReadOnlyList<NoteSignature> Signatures)
{
    private const string C = SigstoreCodes.CheckpointMalformed;

    /// <summary>Parses a checkpoint note; throws CheckupException(SIG-SIGSTORE-CHECKPOINT-MALFORMED).</summary>
    public static Checkpoint Parse(string note)
    {
        ArgumentNullException.ThrowIfNull(note);
        if (note.Length > 64 * 1024) throw new CheckupException(C, "Checkpoint note is too large.");
        var split = note.IndexOf("\n\n", StringComparison.Ordinal);
        if (split < 0) throw new CheckupException(C, "Checkpoint note has no blank line separating text and signatures.");
        var text = note[..(split + 1)];
        var sigPart = note[(split + 2)..];
        var lines = text[..^1].Split('\n');
        if (lines.Length < 3) throw new CheckupException(C, $"Checkpoint has {lines.Length} text lines; origin, size and root hash are required.");
        var origin = lines[0];
        if (origin.Length == 0) throw new CheckupException(C, "Checkpoint origin line is empty.");
        if (!long.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size) || (lines[1].Length > 1 && lines[1][0] == '0'))
            throw new CheckupException(C, $"Checkpoint size line '{Short(lines[1])}' is not a decimal tree size (origin or size missing?).");
        byte[] root;
        try { root = Convert.FromBase64String(lines[2]); }
        catch (FormatException) { throw new CheckupException(C, $"Checkpoint root hash line '{Short(lines[2])}' is not base64."); }
        if (root.Length != 32) throw new CheckupException(C, $"Checkpoint root hash is {root.Length} bytes, expected 32.");
        if (lines.Any(l => l.Length == 0)) throw new CheckupException(C, "Checkpoint text contains an empty line.");

        if (sigPart.Length == 0) throw new CheckupException(SigstoreCodes.CheckpointSignature, "Checkpoint carries no signature lines.");
        if (!sigPart.EndsWith('\n')) throw new CheckupException(C, "Checkpoint signature block must end with a newline.");
        var sigs = new List<NoteSignature>();
        foreach (var line in sigPart[..^1].Split('\n'))
        {
            if (!line.StartsWith("\u2014 ", StringComparison.Ordinal))
                throw new CheckupException(C, $"Checkpoint signature line '{Short(line)}' does not start with an em dash.");
            var rest = line[2..];
            var sp = rest.LastIndexOf(' ');
            if (sp <= 0) throw new CheckupException(C, "Checkpoint signature line has no signer name.");
            byte[] raw;
            try { raw = Convert.FromBase64String(rest[(sp + 1)..]); }
            catch (FormatException) { throw new CheckupException(C, "Checkpoint signature is not base64."); }
            if (raw.Length < 5) throw new CheckupException(C, "Checkpoint signature is too short.");
            sigs.Add(new NoteSignature(rest[..sp], raw[..4], raw[4..]));
        }
        if (sigs.Count == 0) throw new CheckupException(C, "Checkpoint carries no signature.");
        return new Checkpoint(origin, size, root, text, sigs);
    }

    private static string Short(string s) => s.Length > 60 ? s[..60] + "…" : s;
}
