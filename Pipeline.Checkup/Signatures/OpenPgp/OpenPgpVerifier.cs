using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;

namespace Pipeline.Checkup.Signatures.OpenPgp;

/// <summary>Evidence of a successful verification.</summary>
/// <param name="PrimaryFingerprint">Fingerprint of the allowed key (primary) that vouches for the signer.</param>
/// <param name="SigningKeyFingerprint">Fingerprint of the key that made the signature (primary or subkey).</param>
/// <param name="SignatureTime">The signature's creation time.</param>
/// <param name="HashAlgorithm">e.g. <c>SHA256</c>.</param>
/// <param name="PublicKeyAlgorithm">e.g. <c>RSA-3072</c>, <c>EdDSA-Ed25519</c>, <c>ECDSA-P256</c>.</param>
public sealed record OpenPgpVerification(
    string PrimaryFingerprint, string SigningKeyFingerprint, DateTimeOffset SignatureTime, string HashAlgorithm, string PublicKeyAlgorithm);

/// <summary>
/// Verifies a detached OpenPGP signature over a payload (e.g. a git tag split by
/// <see cref="Git.GitTagObject.Split"/>) against an allow-list of public keys, offline. Fails closed with a
/// <see cref="CheckupException"/> whose code is one of <see cref="OpenPgpErrors"/>.
/// </summary>
public static class OpenPgpVerifier
{
    private static readonly HashAlgorithmTag[] AcceptedHashes =
    [
        HashAlgorithmTag.Sha256, HashAlgorithmTag.Sha384, HashAlgorithmTag.Sha512, HashAlgorithmTag.Sha224,
        HashAlgorithmTag.Sha3_256, HashAlgorithmTag.Sha3_512,
    ];

    /// <summary>Verifies <paramref name="sig"/> over <paramref name="payload"/>; returns evidence or throws.</summary>
    public static OpenPgpVerification Verify(
        ReadOnlySpan<byte> payload, OpenPgpSignature sig, IReadOnlyList<OpenPgpPublicKeyRing> allowed, OpenPgpPolicy policy)
    {
        ArgumentNullException.ThrowIfNull(sig);
        ArgumentNullException.ThrowIfNull(allowed);
        ArgumentNullException.ThrowIfNull(policy);

        if (sig.SignatureType is not (PgpSignature.BinaryDocument or PgpSignature.CanonicalTextDocument))
            throw new CheckupException(OpenPgpErrors.WrongSignatureType,
                $"The signature has type 0x{sig.SignatureType:x2}, not a document signature (0x00/0x01); it does not sign the tag.");
        if (!AcceptedHashes.Contains(sig.HashAlgorithm))
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                $"The signature uses the hash algorithm {HashName(sig.HashAlgorithm)}, which is not accepted (MD5, SHA-1 and RIPEMD-160 are broken or obsolete); " +
                "ask the supplier to sign with SHA-256 or stronger (gpg --digest-algo SHA256, or personal-digest-preferences).");
        CheckSignatureAlgorithm(sig.PublicKeyAlgorithm);

        // Find the signer among the allowed keys: by issuer fingerprint if present, else by key id.
        var candidates = allowed
            .SelectMany(r => r.AllKeys.Select(k => (Ring: r, Key: k)))
            .Where(c => sig.IssuerFingerprint is not null
                ? string.Equals(c.Key.Fingerprint, sig.IssuerFingerprint, StringComparison.Ordinal)
                : string.Equals(c.Key.KeyId, sig.IssuerKeyId, StringComparison.Ordinal))
            .ToList();
        if (candidates.Count == 0)
            throw new CheckupException(OpenPgpErrors.UnknownSigner,
                $"The signature was made by key {sig.IssuerKeyId}" + (sig.IssuerFingerprint is null ? "" : $" (fingerprint {sig.IssuerFingerprint})") +
                ", which is not on this pipeline's allow-list of OpenPGP keys. If the supplier changed keys, add the new public key to the allow-list after checking it out of band.");

        CheckupException? first = null;
        foreach (var (ring, key) in candidates)
        {
            try
            {
                return VerifyWith(payload, sig, ring, key, policy);
            }
            catch (CheckupException e)
            {
                first ??= e; // key-id collisions: report the first candidate's reason.
            }
        }
        throw first!;
    }

    private static OpenPgpVerification VerifyWith(
        ReadOnlySpan<byte> payload, OpenPgpSignature sig, OpenPgpPublicKeyRing ring, OpenPgpKey key, OpenPgpPolicy policy)
    {
        var who = key.IsPrimary ? $"key {key.Fingerprint}" : $"subkey {key.Fingerprint} of key {ring.PrimaryFingerprint}";

        // Revocation wins regardless of time: a revoked key may have been compromised long before it was revoked.
        if (ring.Primary.IsRevoked)
            throw new CheckupException(OpenPgpErrors.KeyRevoked,
                $"The signing key {ring.PrimaryFingerprint} has been revoked by its owner; signatures made with it are not accepted whatever their date. Ask the supplier for a tag signed with a current key.");
        if (key.IsRevoked)
            throw new CheckupException(OpenPgpErrors.KeyRevoked,
                $"The signing {who} has been revoked; signatures made with it are not accepted whatever their date. Ask the supplier for a tag signed with a current key.");
        if (!key.IsBound)
            throw new CheckupException(OpenPgpErrors.SubkeyNotBound,
                $"The signing {who} is not bound to its primary key: {key.Problem}. It cannot be trusted on the primary key's behalf.");
        if (!key.CanSign)
            throw new CheckupException(key.Problem?.Contains("back-", StringComparison.Ordinal) == true ? OpenPgpErrors.SubkeyNotBound : OpenPgpErrors.NotSigningKey,
                $"The signing {who} is not usable for signing: {key.Problem}.");

        CheckKeyStrength(key, policy);
        if (key.Inner.Algorithm != sig.PublicKeyAlgorithm
            && !(IsRsa(key.Inner.Algorithm) && IsRsa(sig.PublicKeyAlgorithm)))
            throw new CheckupException(OpenPgpErrors.InvalidSignature,
                $"The signature claims algorithm {(int)sig.PublicKeyAlgorithm} but the {who} uses {key.Algorithm}: it cannot be a signature by that key.");

        var when = sig.CreationTime;
        foreach (var k in key.IsPrimary ? [key] : new[] { ring.Primary, key })
        {
            if (when < k.CreationTime)
                throw new CheckupException(OpenPgpErrors.SignatureBeforeKey,
                    $"The signature claims to be made at {when:u}, before the {(k.IsPrimary ? "key" : "subkey")} {k.Fingerprint} was created ({k.CreationTime:u}); its date is forged or the clock was wrong.");
            if (k.ExpirationTime is { } exp && when >= exp)
                throw new CheckupException(OpenPgpErrors.KeyExpired,
                    $"The {(k.IsPrimary ? "key" : "subkey")} {k.Fingerprint} expired at {exp:u}, before the signature was made ({when:u}). Ask the supplier to extend the key's expiry (and send the updated public key) or sign with a valid key.");
        }
        var now = policy.Clock.GetUtcNow();
        if (when > now + policy.MaxClockSkew)
            throw new CheckupException(OpenPgpErrors.BadSignatureTime,
                $"The signature claims to be made at {when:u}, in the future (now {now:u}); its date is forged or the signer's clock is wrong.");
        var sigExpiry = sig.Inner.GetHashedSubPackets()?.GetSignatureExpirationTime() ?? 0;
        if (sigExpiry > 0 && now >= when.AddSeconds(sigExpiry))
            throw new CheckupException(OpenPgpErrors.BadSignatureTime,
                $"The signature expired at {when.AddSeconds(sigExpiry):u} (its own expiration time subpacket).");

        bool ok;
        try
        {
            // A fresh copy per verification: BouncyCastle signatures carry verification state.
            var fresh = ((PgpSignatureList)new PgpObjectFactory(sig.Packet).NextPgpObject())[0];
            fresh.InitVerify(key.Inner);
            fresh.Update(payload.ToArray());
            ok = fresh.Verify();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CheckupException(OpenPgpErrors.InvalidSignature,
                $"The signature by {who} could not be checked ({e.GetType().Name}: {e.Message}); it is treated as invalid.", e);
        }
        if (!ok)
            throw new CheckupException(OpenPgpErrors.InvalidSignature,
                $"The signature by {who} does not match the signed data: the tag (or its signature) was altered after signing.");
        return new OpenPgpVerification(ring.PrimaryFingerprint, key.Fingerprint, when, HashName(sig.HashAlgorithm), key.Algorithm);
    }

    private static bool IsRsa(PublicKeyAlgorithmTag a) => a is PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign;

    private static void CheckSignatureAlgorithm(PublicKeyAlgorithmTag a)
    {
        if (a is PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign or PublicKeyAlgorithmTag.ECDsa
            or PublicKeyAlgorithmTag.EdDsa_Legacy or PublicKeyAlgorithmTag.Ed25519)
            return;
        var name = a switch
        {
            PublicKeyAlgorithmTag.Dsa => "DSA",
            PublicKeyAlgorithmTag.ElGamalGeneral or PublicKeyAlgorithmTag.ElGamalEncrypt => "ElGamal",
            _ => $"public-key algorithm {(int)a}",
        };
        throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
            $"The signature uses {name}, which this pipeline does not accept; accepted are RSA (>= 2048 bits), ECDSA P-256/P-384/P-521 and Ed25519.");
    }

    private static void CheckKeyStrength(OpenPgpKey key, OpenPgpPolicy policy)
    {
        var k = key.Inner;
        if (IsRsa(k.Algorithm) && k.BitStrength < policy.MinRsaBits)
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                $"The signing key {key.Fingerprint} is RSA with {k.BitStrength} bits; at least {policy.MinRsaBits} are required.");
        if (k.Algorithm == PublicKeyAlgorithmTag.ECDsa && key.Algorithm is not ("ECDSA-P256" or "ECDSA-P384" or "ECDSA-P521"))
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                $"The signing key {key.Fingerprint} is {key.Algorithm}; only the NIST curves P-256, P-384 and P-521 are accepted for ECDSA.");
    }

    private static string HashName(HashAlgorithmTag h) => h switch
    {
        HashAlgorithmTag.MD5 => "MD5",
        HashAlgorithmTag.Sha1 => "SHA1",
        HashAlgorithmTag.RipeMD160 => "RIPEMD160",
        HashAlgorithmTag.Sha224 => "SHA224",
        HashAlgorithmTag.Sha256 => "SHA256",
        HashAlgorithmTag.Sha384 => "SHA384",
        HashAlgorithmTag.Sha512 => "SHA512",
        HashAlgorithmTag.Sha3_256 => "SHA3-256",
        HashAlgorithmTag.Sha3_512 => "SHA3-512",
        _ => $"hash algorithm {(int)h}",
    };
}
