namespace Pipeline.Checkup.Signatures.OpenPgp;

/// <summary>
/// What the verifier accepts. The defaults reject MD5/SHA-1/RIPEMD-160 signatures, RSA keys under 2048 bits,
/// DSA and ElGamal; they accept RSA, ECDSA on NIST P-256/P-384/P-521 and EdDSA (Ed25519, v4 "legacy" encoding).
/// Version 6 keys and signatures are refused: BouncyCastle 2.7 cannot parse them.
/// </summary>
public sealed record OpenPgpPolicy
{
    /// <summary>The default policy, using the system clock.</summary>
    public static OpenPgpPolicy Default { get; } = new();

    /// <summary>Smallest accepted RSA modulus in bits.</summary>
    public int MinRsaBits { get; init; } = 2048;

    /// <summary>How far in the future (by <see cref="Clock"/>) a signature's creation time may lie.</summary>
    public TimeSpan MaxClockSkew { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>The clock used to reject signatures from the future and expired signatures.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
}
