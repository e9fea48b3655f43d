using System.Text;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Security;

namespace Pipeline.Tests.Checkup.OpenPgp;

/// <summary>
/// Builds OpenPGP keys, rings and signatures with BouncyCastle for unit tests that gpg cannot easily produce
/// (missing back-signatures, forged dates, wrong flags, hostile packets).
/// </summary>
internal static class BcKeys
{
    private static readonly SecureRandom Rng = new();
    public static readonly DateTime Created = new(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    public static PgpKeyPair Ed25519(DateTime? created = null)
    {
        var g = new Ed25519KeyPairGenerator();
        g.Init(new Ed25519KeyGenerationParameters(Rng));
        return new PgpKeyPair(PublicKeyAlgorithmTag.EdDsa_Legacy, g.GenerateKeyPair(), created ?? Created);
    }

    public static PgpKeyPair Rsa(int bits, DateTime? created = null)
    {
        var g = new RsaKeyPairGenerator();
        g.Init(new RsaKeyGenerationParameters(BigInteger.ValueOf(65537), Rng, bits, 25));
        return new PgpKeyPair(PublicKeyAlgorithmTag.RsaGeneral, g.GenerateKeyPair(), created ?? Created);
    }

    public sealed record Sub(PgpKeyPair Key, int Flags, bool BackSig = true, bool CorruptBinding = false, bool Revoke = false);

    /// <summary>A transferable public key: primary + one self-certified uid (+ optional subkey), binary.</summary>
    public static byte[] Ring(PgpKeyPair primary, string uid = "Test <test@example>", int flags = PgpKeyFlags.CanSign | PgpKeyFlags.CanCertify,
        long expirySeconds = 0, Sub? sub = null, bool revokePrimary = false, bool corruptUidCert = false)
    {
        var hashed = new PgpSignatureSubpacketGenerator();
        hashed.SetSignatureCreationTime(false, primary.PublicKey.CreationTime);
        hashed.SetKeyFlags(false, flags);
        if (expirySeconds > 0) hashed.SetKeyExpirationTime(false, expirySeconds);
        hashed.SetIssuerFingerprint(false, primary.PublicKey);
        var cert = Generator(primary, PgpSignature.PositiveCertification, hashed).GenerateCertification(uid, primary.PublicKey);
        var pub = PgpPublicKey.AddCertification(primary.PublicKey, uid, cert);
        if (revokePrimary)
        {
            var rev = new PgpSignatureSubpacketGenerator();
            rev.SetSignatureCreationTime(false, primary.PublicKey.CreationTime.AddDays(1));
            rev.SetIssuerFingerprint(false, primary.PublicKey);
            pub = PgpPublicKey.AddCertification(pub, Generator(primary, PgpSignature.KeyRevocation, rev).GenerateCertification(primary.PublicKey));
        }
        var bytes = new List<byte>(pub.GetEncoded());
        if (corruptUidCert)
        {
            // Flip a byte in the uid itself: the certification no longer covers it.
            var idx = IndexOf(bytes.ToArray(), Encoding.UTF8.GetBytes(uid));
            bytes[idx + 1] ^= 0x20;
        }
        if (sub is not null) bytes.AddRange(SubkeyPackets(primary, sub));
        return [.. bytes];
    }

    private static byte[] SubkeyPackets(PgpKeyPair primary, Sub sub)
    {
        var body = sub.Key.PublicKey.PublicKeyPacket.GetEncodedContents();
        var ms = new MemoryStream();
        ms.WriteByte(0xC0 | 14);
        WriteNewLength(ms, body.Length);
        ms.Write(body);

        var hashed = new PgpSignatureSubpacketGenerator();
        hashed.SetSignatureCreationTime(false, sub.Key.PublicKey.CreationTime);
        hashed.SetKeyFlags(false, sub.Flags);
        hashed.SetIssuerFingerprint(false, primary.PublicKey);
        if (sub.BackSig)
        {
            var back = new PgpSignatureSubpacketGenerator();
            back.SetSignatureCreationTime(false, sub.Key.PublicKey.CreationTime);
            back.SetIssuerFingerprint(false, sub.Key.PublicKey);
            hashed.AddEmbeddedSignature(false, Generator(sub.Key, PgpSignature.PrimaryKeyBinding, back).GenerateCertification(primary.PublicKey, sub.Key.PublicKey));
        }
        var binding = Generator(primary, PgpSignature.SubkeyBinding, hashed).GenerateCertification(primary.PublicKey, sub.Key.PublicKey).GetEncoded();
        if (sub.CorruptBinding) binding[^5] ^= 0x01;
        ms.Write(binding);
        if (sub.Revoke)
        {
            var rev = new PgpSignatureSubpacketGenerator();
            rev.SetSignatureCreationTime(false, sub.Key.PublicKey.CreationTime.AddDays(1));
            rev.SetIssuerFingerprint(false, primary.PublicKey);
            ms.Write(Generator(primary, PgpSignature.SubkeyRevocation, rev).GenerateCertification(primary.PublicKey, sub.Key.PublicKey).GetEncoded());
        }
        return ms.ToArray();
    }

    /// <summary>A binary detached signature packet over <paramref name="data"/>.</summary>
    public static byte[] Sign(PgpKeyPair key, byte[] data, DateTime when, int type = PgpSignature.BinaryDocument,
        HashAlgorithmTag hash = HashAlgorithmTag.Sha256, bool issuerFingerprint = true, string? criticalNotation = null)
    {
        var hashed = new PgpSignatureSubpacketGenerator();
        hashed.SetSignatureCreationTime(false, when);
        if (criticalNotation is not null) hashed.AddNotationData(true, true, criticalNotation, "1");
        if (issuerFingerprint) hashed.SetIssuerFingerprint(false, key.PublicKey);
        var unhashed = new PgpSignatureSubpacketGenerator();
        unhashed.SetIssuerKeyID(false, key.KeyId);
        var g = new PgpSignatureGenerator(key.PublicKey.Algorithm, hash);
        g.InitSign(type, key.PrivateKey);
        g.SetHashedSubpackets(hashed.Generate());
        g.SetUnhashedSubpackets(unhashed.Generate());
        g.Update(data);
        return g.Generate().GetEncoded();
    }

    private static PgpSignatureGenerator Generator(PgpKeyPair signer, int type, PgpSignatureSubpacketGenerator hashed)
    {
        var g = new PgpSignatureGenerator(signer.PublicKey.Algorithm, HashAlgorithmTag.Sha256);
        g.InitSign(type, signer.PrivateKey);
        g.SetHashedSubpackets(hashed.Generate());
        return g;
    }

    /// <summary>ASCII armour with a correct CRC-24 (or a wrong one when <paramref name="badCrc"/>).</summary>
    public static string Armor(byte[] data, string kind = "PGP SIGNATURE", bool badCrc = false)
    {
        var sb = new StringBuilder().Append("-----BEGIN ").Append(kind).Append("-----\n\n");
        var b64 = Convert.ToBase64String(data);
        for (var i = 0; i < b64.Length; i += 64) sb.Append(b64.AsSpan(i, Math.Min(64, b64.Length - i))).Append('\n');
        var crc = Crc24(data) ^ (badCrc ? 1 : 0);
        sb.Append('=').Append(Convert.ToBase64String([(byte)(crc >> 16), (byte)(crc >> 8), (byte)crc])).Append('\n');
        return sb.Append("-----END ").Append(kind).Append("-----\n").ToString();
    }

    public static byte[] Packet(int tag, byte[] body)
    {
        var ms = new MemoryStream();
        ms.WriteByte((byte)(0xC0 | tag));
        WriteNewLength(ms, body.Length);
        ms.Write(body);
        return ms.ToArray();
    }

    private static void WriteNewLength(MemoryStream ms, int len)
    {
        if (len < 192) ms.WriteByte((byte)len);
        else if (len < 8384) { ms.WriteByte((byte)(((len - 192) >> 8) + 192)); ms.WriteByte((byte)(len - 192)); }
        else { ms.WriteByte(0xFF); ms.WriteByte((byte)(len >> 24)); ms.WriteByte((byte)(len >> 16)); ms.WriteByte((byte)(len >> 8)); ms.WriteByte((byte)len); }
    }

    private static int Crc24(byte[] data)
    {
        var crc = 0xB704CE;
        foreach (var b in data)
        {
            crc ^= b << 16;
            for (var k = 0; k < 8; k++) { crc <<= 1; if ((crc & 0x1000000) != 0) crc ^= 0x1864CFB; }
        }
        return crc & 0xFFFFFF;
    }

    private static int IndexOf(byte[] hay, byte[] needle) => hay.AsSpan().IndexOf(needle);
}
