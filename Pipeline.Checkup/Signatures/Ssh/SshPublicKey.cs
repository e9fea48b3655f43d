using System.Numerics;
using System.Security.Cryptography;

namespace Pipeline.Checkup.Signatures.Ssh;

/// <summary>
/// An SSH public key accepted for signature verification: <c>ssh-ed25519</c>,
/// <c>ecdsa-sha2-nistp256/384/521</c> or <c>ssh-rsa</c> (2048 to 16384 bits; signatures must be
/// rsa-sha2-256/512). Two keys are equal when their wire blobs are byte-identical.
/// </summary>
public sealed class SshPublicKey : IEquatable<SshPublicKey>
{
    /// <summary>Smallest RSA modulus accepted, in bits.</summary>
    public const int MinRsaBits = 2048;
    private const int MaxRsaBits = 16384;
    private const int MaxLineLength = 16 * 1024;

    private readonly byte[] _blob;

    private SshPublicKey(string type, byte[] blob, string? comment, byte[]? ed25519, ECParameters? ec, RSAParameters? rsa, int bits)
    {
        Type = type;
        _blob = blob;
        Comment = comment;
        Ed25519 = ed25519;
        Ec = ec;
        Rsa = rsa;
        Bits = bits;
        Fingerprint = "SHA256:" + Convert.ToBase64String(SHA256.HashData(blob)).TrimEnd('=');
    }

    /// <summary>The key type, e.g. <c>ssh-ed25519</c>.</summary>
    public string Type { get; }

    /// <summary>The comment from the key line, if any (never part of the identity).</summary>
    public string? Comment { get; }

    /// <summary><c>SHA256:&lt;base64 without padding&gt;</c> of the key blob, as printed by <c>ssh-keygen -l</c>.</summary>
    public string Fingerprint { get; }

    /// <summary>Key size in bits (256 for Ed25519 and P-256, the modulus length for RSA).</summary>
    public int Bits { get; }

    /// <summary>The SSH wire encoding of the key.</summary>
    public ReadOnlyMemory<byte> Blob => _blob;

    internal byte[]? Ed25519 { get; }
    internal ECParameters? Ec { get; }
    internal RSAParameters? Rsa { get; }

    /// <summary>
    /// Parses a key line in authorized_keys form: <c>&lt;type&gt; &lt;base64&gt; [comment]</c>. The type
    /// must match the type inside the blob.
    /// </summary>
    public static SshPublicKey Parse(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        if (line.Length > MaxLineLength)
            throw new CheckupException(SshErrors.MalformedPublicKey, $"The public key line is longer than {MaxLineLength} characters.");
        var parts = line.Trim().Split((char[]?)null, 3, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length < 2)
            throw new CheckupException(SshErrors.MalformedPublicKey,
                "A public key line must be '<type> <base64> [comment]' (as in authorized_keys or a .pub file).");
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(parts[1]);
        }
        catch (FormatException)
        {
            throw new CheckupException(SshErrors.MalformedPublicKey, "The public key is not valid base64.");
        }
        var key = FromBlob(blob, parts.Length > 2 ? parts[2].Trim() : null, SshErrors.MalformedPublicKey);
        if (key.Type != parts[0])
            throw new CheckupException(SshErrors.MalformedPublicKey, $"The key line says '{parts[0]}' but the key inside is '{key.Type}'.");
        return key;
    }

    /// <summary>Parses the SSH wire encoding of a public key (RFC 4253 / 5656 / 8709).</summary>
    internal static SshPublicKey FromBlob(ReadOnlySpan<byte> blob, string? comment, string malformedCode)
    {
        var r = new SshReader(blob, malformedCode, "SSH public key");
        var type = r.ReadText();
        switch (type)
        {
            case "ssh-ed25519":
            {
                var pk = r.ReadString();
                r.EnsureEnd();
                if (pk.Length != 32) throw new CheckupException(malformedCode, $"Malformed SSH public key: an Ed25519 key is 32 bytes, not {pk.Length}.");
                return new SshPublicKey(type, blob.ToArray(), comment, pk.ToArray(), null, null, 256);
            }
            case "ecdsa-sha2-nistp256":
            case "ecdsa-sha2-nistp384":
            case "ecdsa-sha2-nistp521":
            {
                var curveName = r.ReadText();
                var q = r.ReadString();
                r.EnsureEnd();
                var (curve, size, bits) = type switch
                {
                    "ecdsa-sha2-nistp256" => (ECCurve.NamedCurves.nistP256, 32, 256),
                    "ecdsa-sha2-nistp384" => (ECCurve.NamedCurves.nistP384, 48, 384),
                    _ => (ECCurve.NamedCurves.nistP521, 66, 521),
                };
                if (curveName != type["ecdsa-sha2-".Length..])
                    throw new CheckupException(malformedCode, $"Malformed SSH public key: curve '{curveName}' does not match key type '{type}'.");
                if (q.Length != 1 + 2 * size || q[0] != 0x04)
                    throw new CheckupException(malformedCode, "Malformed SSH public key: the EC point is not an uncompressed point of the curve's size.");
                var parameters = new ECParameters { Curve = curve, Q = new ECPoint { X = q.Slice(1, size).ToArray(), Y = q.Slice(1 + size, size).ToArray() } };
                try
                {
                    using var probe = ECDsa.Create(parameters); // validates the point is on the curve
                }
                catch (CryptographicException)
                {
                    throw new CheckupException(malformedCode, "Malformed SSH public key: the EC point is not on the curve.");
                }
                return new SshPublicKey(type, blob.ToArray(), comment, null, parameters, null, bits);
            }
            case "ssh-rsa":
            {
                var e = r.ReadPositiveMpint();
                var n = r.ReadPositiveMpint();
                r.EnsureEnd();
                if (e.IsEmpty || n.IsEmpty || (e[^1] & 1) == 0 || (e.Length == 1 && e[0] < 3) || e.Length > 8)
                    throw new CheckupException(malformedCode, "Malformed SSH public key: invalid RSA exponent or modulus.");
                var bits = (int)(n.Length * 8L - BitOperations.LeadingZeroCount((uint)n[0]) + 24);
                if (bits < MinRsaBits)
                    throw new CheckupException(SshErrors.UnsupportedAlgorithm, $"RSA keys under {MinRsaBits} bits are not accepted (this key has {bits}).");
                if (bits > MaxRsaBits)
                    throw new CheckupException(SshErrors.UnsupportedAlgorithm, $"RSA keys over {MaxRsaBits} bits are not accepted (this key has {bits}).");
                return new SshPublicKey(type, blob.ToArray(), comment, null, null, new RSAParameters { Exponent = e.ToArray(), Modulus = n.ToArray() }, bits);
            }
            default:
                throw new CheckupException(SshErrors.UnsupportedAlgorithm,
                    $"SSH key type '{Printable(type)}' is not accepted; use ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa (2048+ bits).");
        }
    }

    internal static string Printable(string s) => s.Length > 64 ? s[..64] + "..." : s;

    public bool Equals(SshPublicKey? other) => other is not null && _blob.AsSpan().SequenceEqual(other._blob);

    public override bool Equals(object? obj) => Equals(obj as SshPublicKey);

    public override int GetHashCode() => Fingerprint.GetHashCode(StringComparison.Ordinal);

    /// <summary>The key as an authorized_keys line (type, base64, comment).</summary>
    public override string ToString() => $"{Type} {Convert.ToBase64String(_blob)}{(Comment is null ? "" : " " + Comment)}";
}
