using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Pipeline.Checkup.Signatures.Ssh;

/// <summary>Evidence of a valid SSH signature: the allow-listed key that signed and the message hash algorithm.</summary>
public sealed record SshVerification(SshPublicKey Key, string HashAlgorithm);

/// <summary>
/// Verifies SSH signatures (PROTOCOL.sshsig) over a message against an allow-list of public keys.
/// Checks, in order: namespace, key on the allow-list, algorithm accepted for the key, cryptographic
/// signature. Every failure is a <see cref="CheckupException"/> with an <see cref="SshErrors"/> code.
/// </summary>
public static class SshSignatureVerifier
{
    /// <summary>Verifies <paramref name="sig"/> over <paramref name="message"/>; returns the matching allowed key.</summary>
    public static SshVerification Verify(ReadOnlySpan<byte> message, SshSignature sig, string expectedNamespace, IReadOnlyList<SshPublicKey> allowedKeys)
    {
        ArgumentNullException.ThrowIfNull(sig);
        ArgumentException.ThrowIfNullOrEmpty(expectedNamespace);
        ArgumentNullException.ThrowIfNull(allowedKeys);

        if (!string.Equals(sig.Namespace, expectedNamespace, StringComparison.Ordinal))
            throw new CheckupException(SshErrors.WrongNamespace,
                $"The signature is for namespace '{SshPublicKey.Printable(sig.Namespace)}', expected '{expectedNamespace}'; it was made for another purpose.");

        var allowed = allowedKeys.FirstOrDefault(k => k.Equals(sig.PublicKey))
            ?? throw new CheckupException(SshErrors.KeyNotAllowed,
                $"The signing key {sig.PublicKey.Type} {sig.PublicKey.Fingerprint} is not on the allow-list; add it to the supplier's certified keys if it is genuine.");

        var data = sig.SignedData(message);
        bool valid;
        switch (allowed.Type)
        {
            case "ssh-ed25519":
                RequireAlgorithm(sig, "ssh-ed25519");
                valid = sig.SignatureBlob.Length == 64 && VerifyEd25519(allowed.Ed25519!, data, sig.SignatureBlob);
                break;
            case "ecdsa-sha2-nistp256":
            case "ecdsa-sha2-nistp384":
            case "ecdsa-sha2-nistp521":
                RequireAlgorithm(sig, allowed.Type);
                valid = VerifyEcdsa(allowed, data, sig.SignatureBlob);
                break;
            case "ssh-rsa":
                if (sig.SignatureAlgorithm == "ssh-rsa")
                    throw new CheckupException(SshErrors.UnsupportedAlgorithm,
                        "RSA signatures with SHA-1 ('ssh-rsa') are not accepted; sign with rsa-sha2-256 or rsa-sha2-512 (any current ssh-keygen does).");
                if (sig.SignatureAlgorithm is not ("rsa-sha2-256" or "rsa-sha2-512"))
                    throw Unsupported(sig);
                valid = VerifyRsa(allowed, data, sig.SignatureBlob, sig.SignatureAlgorithm == "rsa-sha2-256" ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA512);
                break;
            default:
                throw Unsupported(sig);
        }

        if (!valid)
            throw new CheckupException(SshErrors.SignatureInvalid,
                $"The SSH signature by {allowed.Type} {allowed.Fingerprint} does not match the signed content: the content or the signature was altered.");
        return new SshVerification(allowed, sig.HashAlgorithm);
    }

    private static void RequireAlgorithm(SshSignature sig, string expected)
    {
        if (sig.SignatureAlgorithm != expected) throw Unsupported(sig);
    }

    private static CheckupException Unsupported(SshSignature sig) => new(SshErrors.UnsupportedAlgorithm,
        $"Signature algorithm '{SshPublicKey.Printable(sig.SignatureAlgorithm)}' is not accepted for a {sig.PublicKey.Type} key.");

    private static bool VerifyEd25519(byte[] publicKey, byte[] data, byte[] signature)
    {
        var signer = new Ed25519Signer();
        signer.Init(false, new Ed25519PublicKeyParameters(publicKey, 0));
        signer.BlockUpdate(data, 0, data.Length);
        return signer.VerifySignature(signature);
    }

    private static bool VerifyEcdsa(SshPublicKey key, byte[] data, byte[] signatureBlob)
    {
        var (size, hash) = key.Type switch
        {
            "ecdsa-sha2-nistp256" => (32, HashAlgorithmName.SHA256),
            "ecdsa-sha2-nistp384" => (48, HashAlgorithmName.SHA384),
            _ => (66, HashAlgorithmName.SHA512),
        };
        var r = new SshReader(signatureBlob, SshErrors.MalformedBlob, "ECDSA signature");
        var rv = r.ReadPositiveMpint();
        var sv = r.ReadPositiveMpint();
        r.EnsureEnd();
        if (rv.IsEmpty || sv.IsEmpty || rv.Length > size || sv.Length > size) return false;
        var p1363 = new byte[2 * size];
        rv.CopyTo(p1363.AsSpan(size - rv.Length, rv.Length));
        sv.CopyTo(p1363.AsSpan(2 * size - sv.Length, sv.Length));
        using var ecdsa = ECDsa.Create(key.Ec!.Value);
        return ecdsa.VerifyData(data, p1363, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    private static bool VerifyRsa(SshPublicKey key, byte[] data, byte[] signature, HashAlgorithmName hash)
    {
        var modulusLength = key.Rsa!.Value.Modulus!.Length;
        if (signature.Length > modulusLength) return false;
        if (signature.Length < modulusLength)
        {
            var padded = new byte[modulusLength];
            signature.CopyTo(padded, modulusLength - signature.Length);
            signature = padded;
        }
        using var rsa = RSA.Create(key.Rsa.Value);
        return rsa.VerifyData(data, signature, hash, RSASignaturePadding.Pkcs1);
    }
}
