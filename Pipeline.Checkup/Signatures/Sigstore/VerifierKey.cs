using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>A public key (ECDSA, RSA PKCS#1 v1.5, Ed25519) that verifies signatures over data or over a precomputed digest.</summary>
internal sealed class VerifierKey
{
    private readonly ECDsa? _ec;
    private readonly RSA? _rsa;
    private readonly Ed25519PublicKeyParameters? _ed;

    private VerifierKey(ECDsa? ec, RSA? rsa, Ed25519PublicKeyParameters? ed, byte[] spki)
    {
        _ec = ec; _rsa = rsa; _ed = ed; Spki = spki;
    }

    public byte[] Spki { get; }

    public bool IsEd25519 => _ed is not null;

    /// <summary>The key type and size, e.g. "EC P-256", "RSA-4096", "Ed25519".</summary>
    public string Kind => _ed is not null ? "Ed25519" : _ec is not null ? $"EC P-{_ec.KeySize}" : $"RSA-{_rsa!.KeySize}";

    /// <summary>The hash the key signs with (by curve size for ECDSA; SHA-256 for RSA).</summary>
    public HashAlgorithmName Hash => _ec is null ? HashAlgorithmName.SHA256 : _ec.KeySize switch
    {
        384 => HashAlgorithmName.SHA384,
        521 => HashAlgorithmName.SHA512,
        _ => HashAlgorithmName.SHA256,
    };

    public static VerifierKey FromSpki(byte[] spki, string code)
    {
        try
        {
            var reader = new AsnReader(spki, AsnEncodingRules.DER);
            var seq = reader.ReadSequence();
            var alg = seq.ReadSequence();
            var oid = alg.ReadObjectIdentifier();
            switch (oid)
            {
                case "1.2.840.10045.2.1":
                    var ec = ECDsa.Create();
                    ec.ImportSubjectPublicKeyInfo(spki, out _);
                    return new VerifierKey(ec, null, null, spki);
                case "1.2.840.113549.1.1.1":
                    var rsa = RSA.Create();
                    rsa.ImportSubjectPublicKeyInfo(spki, out _);
                    return new VerifierKey(null, rsa, null, spki);
                case "1.3.101.112":
                    var bits = seq.ReadBitString(out _);
                    if (bits.Length != 32) throw new CryptographicException("Ed25519 key must be 32 bytes.");
                    return new VerifierKey(null, null, new Ed25519PublicKeyParameters(bits, 0), spki);
                default:
                    throw new CheckupException(code, $"Unsupported public key algorithm {oid}.");
            }
        }
        catch (Exception ex) when (ex is AsnContentException or CryptographicException or ArgumentException or NotSupportedException)
        {
            throw new CheckupException(code, $"Public key cannot be parsed: {ex.Message}", ex);
        }
    }

    public static VerifierKey FromCertificate(X509Certificate2 cert, string code) => FromSpki(cert.PublicKey.ExportSubjectPublicKeyInfo(), code);

    /// <summary>Parses a PEM "PUBLIC KEY" (SPKI) or "CERTIFICATE" block.</summary>
    public static VerifierKey FromPem(string pem, string code)
    {
        try
        {
            var fields = PemEncoding.Find(pem);
            var label = pem[fields.Label];
            var der = Convert.FromBase64String(pem[fields.Base64Data]);
            if (label == "CERTIFICATE")
            {
                using var cert = X509CertificateLoader.LoadCertificate(der);
                return FromCertificate(cert, code);
            }
            if (label != "PUBLIC KEY") throw new CheckupException(code, $"PEM block '{label}' is not a public key.");
            return FromSpki(der, code);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or CryptographicException or NotSupportedException)
        {
            throw new CheckupException(code, $"PEM public key cannot be parsed: {ex.Message}", ex);
        }
    }

    public bool Verify(ReadOnlySpan<byte> data, byte[] signature)
    {
        try
        {
            if (_ed is not null)
            {
                if (signature.Length != 64) return false;
                var s = new Ed25519Signer();
                s.Init(false, _ed);
                s.BlockUpdate(data.ToArray(), 0, data.Length);
                return s.VerifySignature(signature);
            }
            if (_ec is not null) return _ec.VerifyData(data, signature, Hash, DSASignatureFormat.Rfc3279DerSequence);
            return _rsa!.VerifyData(data, signature, Hash, RSASignaturePadding.Pkcs1);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>Verifies over a digest made with <paramref name="hash"/>. Ed25519 cannot (returns false).</summary>
    public bool VerifyDigest(ReadOnlySpan<byte> digest, HashAlgorithmName hash, byte[] signature)
    {
        try
        {
            if (_ec is not null) return hash == Hash && _ec.VerifyHash(digest, signature, DSASignatureFormat.Rfc3279DerSequence);
            if (_rsa is not null) return _rsa.VerifyHash(digest, signature, hash, RSASignaturePadding.Pkcs1);
            return false;
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public bool SameKeyAs(VerifierKey other) => Spki.AsSpan().SequenceEqual(other.Spki);
}
