using System.Security.Cryptography;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>
/// Who must have signed: either a Fulcio certificate identity (exact SAN match) and OIDC issuer
/// (exact match of extension 1.3.6.1.4.1.57264.1.8 or the legacy .1.1), or a managed public key (PEM).
/// </summary>
public sealed record VerificationPolicy
{
    private VerificationPolicy(string? identity, string? issuer, string? publicKeyPem)
    {
        Identity = identity; Issuer = issuer; PublicKeyPem = publicKeyPem;
    }

    /// <summary>Expected certificate SAN (URI or e-mail), exact match.</summary>
    public string? Identity { get; }
    /// <summary>Expected OIDC issuer, exact match.</summary>
    public string? Issuer { get; }
    /// <summary>Managed public key (PEM SPKI) for key-signed bundles.</summary>
    public string? PublicKeyPem { get; }

    /// <summary>Policy for keyless (Fulcio certificate) bundles.</summary>
    public static VerificationPolicy ForIdentity(string identity, string issuer)
    {
        ArgumentException.ThrowIfNullOrEmpty(identity);
        ArgumentException.ThrowIfNullOrEmpty(issuer);
        return new VerificationPolicy(identity, issuer, null);
    }

    /// <summary>Policy for managed-key bundles.</summary>
    public static VerificationPolicy ForPublicKey(string publicKeyPem)
    {
        ArgumentException.ThrowIfNullOrEmpty(publicKeyPem);
        return new VerificationPolicy(null, null, publicKeyPem);
    }
}

/// <summary>The artifact to check: its SHA-256 digest, and its bytes when available.</summary>
public sealed record ArtifactInput
{
    private ArtifactInput(byte[] sha256, byte[]? bytes) { Sha256 = sha256; Bytes = bytes; }

    /// <summary>SHA-256 of the artifact.</summary>
    public byte[] Sha256 { get; }
    /// <summary>The artifact bytes if given (needed only for Ed25519 message signatures).</summary>
    public byte[]? Bytes { get; }

    /// <summary>From in-memory bytes.</summary>
    public static ArtifactInput FromBytes(byte[] bytes) => new(SHA256.HashData(bytes), bytes);

    /// <summary>From a stream (hashed, not buffered).</summary>
    public static ArtifactInput FromStream(Stream stream) => new(SHA256.HashData(stream), null);

    /// <summary>From a digest written as <c>sha256:&lt;64 hex&gt;</c> (or bare hex).</summary>
    public static ArtifactInput FromDigest(string digest)
    {
        ArgumentNullException.ThrowIfNull(digest);
        var hex = digest.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase) ? digest[7..] : digest;
        if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
            throw new ArgumentException($"Artifact digest must be sha256:<64 hex digits>, got '{(digest.Length > 80 ? digest[..80] : digest)}'.", nameof(digest));
        return new ArtifactInput(Convert.FromHexString(hex), null);
    }
}

/// <summary>One passed check with the evidence it rests on.</summary>
public sealed record SigstoreCheck(string Name, string Evidence);

/// <summary>The outcome of a successful verification: every check performed, with evidence.</summary>
public sealed record SigstoreVerificationResult(
    string? SignerIdentity,
    string? Issuer,
    IReadOnlyList<long> LogIndexes,
    IReadOnlyList<DateTimeOffset> VerifiedTimes,
    IReadOnlyList<SigstoreCheck> Checks);
