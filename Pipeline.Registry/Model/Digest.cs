using System.Security.Cryptography;

namespace Pipeline.Registry.Model;

/// <summary>
/// A content digest <c>algorithm:hex</c>. Only <c>sha256</c> (64 lowercase hex) and <c>sha512</c>
/// (128 lowercase hex) are accepted; anything else (uppercase, other algorithms, wrong length,
/// whitespace) is rejected by <see cref="Parse"/> with <c>REG-DIGEST-001</c>.
/// </summary>
public sealed record Digest
{
    public const string Sha256 = "sha256";
    public const string Sha512 = "sha512";

    private Digest(string algorithm, string hex)
    {
        Algorithm = algorithm;
        Hex = hex;
    }

    /// <summary><c>sha256</c> or <c>sha512</c>.</summary>
    public string Algorithm { get; }

    /// <summary>The lowercase hex encoding of the hash.</summary>
    public string Hex { get; }

    /// <summary>Parses and validates a digest string.</summary>
    public static Digest Parse(string? value)
    {
        if (TryParse(value, out var digest, out var reason)) return digest;
        throw new RegistryException("REG-DIGEST-001", $"Invalid digest '{Printable(value)}': {reason}.");
    }

    /// <summary>Parses a digest string; returns false (with a reason) when it is malformed.</summary>
    public static bool TryParse(string? value, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Digest? digest, out string reason)
    {
        digest = null;
        if (string.IsNullOrEmpty(value)) { reason = "it is empty"; return false; }
        var colon = value.IndexOf(':');
        if (colon <= 0) { reason = "expected 'algorithm:hex'"; return false; }
        var algorithm = value[..colon];
        var hex = value[(colon + 1)..];
        int expected;
        switch (algorithm)
        {
            case Sha256: expected = 64; break;
            case Sha512: expected = 128; break;
            default: reason = $"unsupported algorithm (only {Sha256} and {Sha512})"; return false;
        }
        if (hex.Length != expected) { reason = $"{algorithm} needs {expected} hex characters, got {hex.Length}"; return false; }
        foreach (var c in hex)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                reason = "the hex part must be lowercase 0-9a-f";
                return false;
            }
        }
        digest = new Digest(algorithm, hex);
        reason = "";
        return true;
    }

    /// <summary>The sha256 digest of <paramref name="data"/>.</summary>
    public static Digest Compute(ReadOnlySpan<byte> data) => FromHash(Sha256, SHA256.HashData(data));

    /// <summary>The sha256 digest of a stream read to its end.</summary>
    public static Digest Compute(Stream data) => FromHash(Sha256, SHA256.HashData(data));

    /// <summary>Builds a digest from raw hash bytes of the given algorithm.</summary>
    public static Digest FromHash(string algorithm, ReadOnlySpan<byte> hash)
    {
        var expected = algorithm switch
        {
            Sha256 => 32,
            Sha512 => 64,
            _ => throw new RegistryException("REG-DIGEST-001", $"Unsupported digest algorithm '{Printable(algorithm)}'."),
        };
        if (hash.Length != expected)
            throw new RegistryException("REG-DIGEST-001", $"A {algorithm} hash has {expected} bytes, got {hash.Length}.");
        return new Digest(algorithm, Convert.ToHexStringLower(hash));
    }

    /// <summary>A fresh incremental hash for this digest's algorithm.</summary>
    public IncrementalHash CreateHash() =>
        IncrementalHash.CreateHash(Algorithm == Sha512 ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256);

    public override string ToString() => $"{Algorithm}:{Hex}";

    internal static string Printable(string? value) => Safe.Printable(value);
}

/// <summary>Helpers to quote hostile input in messages.</summary>
internal static class Safe
{
    /// <summary>Truncates and replaces control characters so a value can be quoted in a message.</summary>
    public static string Printable(string? value)
    {
        if (value is null) return "(null)";
        var s = value.Length > 140 ? value[..140] + "..." : value;
        return new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
    }
}
