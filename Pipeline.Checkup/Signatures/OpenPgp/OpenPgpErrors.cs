namespace Pipeline.Checkup.Signatures.OpenPgp;

/// <summary>Stable error codes for OpenPGP signature verification (prefix <c>CHK-PGP-</c>).</summary>
public static class OpenPgpErrors
{
    /// <summary>The armour or the packet structure is malformed, truncated, oversized or of an unexpected kind.</summary>
    public const string Malformed = "CHK-PGP-001";
    /// <summary>The hash or public-key algorithm, or the key size/curve, is not accepted by the policy (MD5, SHA-1, RSA &lt; 2048, DSA, ElGamal, ...).</summary>
    public const string UnsupportedAlgorithm = "CHK-PGP-002";
    /// <summary>The signature's issuer is not one of the allowed keys.</summary>
    public const string UnknownSigner = "CHK-PGP-003";
    /// <summary>The signing key (or its primary key) had expired when the signature was made.</summary>
    public const string KeyExpired = "CHK-PGP-004";
    /// <summary>The signing key or its primary key is revoked. Revocation wins regardless of the signature time.</summary>
    public const string KeyRevoked = "CHK-PGP-005";
    /// <summary>The signing subkey has no valid binding signature (or back-signature) from its primary key.</summary>
    public const string SubkeyNotBound = "CHK-PGP-006";
    /// <summary>The signing key is not flagged as able to sign.</summary>
    public const string NotSigningKey = "CHK-PGP-007";
    /// <summary>The signature claims a creation time before the key's creation time.</summary>
    public const string SignatureBeforeKey = "CHK-PGP-008";
    /// <summary>The signature does not verify over the payload (tampered payload or signature).</summary>
    public const string InvalidSignature = "CHK-PGP-009";
    /// <summary>The signature claims a creation time in the future (beyond the policy's clock skew) or has itself expired.</summary>
    public const string BadSignatureTime = "CHK-PGP-010";
    /// <summary>A public key in the allow-list is unusable: no valid self-signature, secret key material, duplicate key.</summary>
    public const string UnusableKey = "CHK-PGP-011";
    /// <summary>The signature is not a detached signature over binary data (wrong signature type).</summary>
    public const string WrongSignatureType = "CHK-PGP-012";
    /// <summary>The signature carries a critical subpacket this verifier does not understand (e.g. a critical notation).</summary>
    public const string CriticalSubpacket = "CHK-PGP-013";
}
