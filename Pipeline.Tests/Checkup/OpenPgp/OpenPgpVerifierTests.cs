using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;

namespace Pipeline.Tests.Checkup.OpenPgp;

/// <summary>Verifier rules on keys and signatures built with BouncyCastle (cases gpg will not produce on request).</summary>
public sealed class OpenPgpVerifierTests
{
    private static readonly byte[] Data = "object 0123\ntype commit\ntag v1\n\nrelease v1\n"u8.ToArray();
    private static readonly DateTime Day1 = BcKeys.Created.AddDays(1);
    private static readonly OpenPgpPolicy Policy = new() { Clock = new FixedClock(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero)) };

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static OpenPgpVerification Verify(byte[] sigPacket, byte[] ring, byte[]? data = null, OpenPgpPolicy? policy = null) =>
        OpenPgpVerifier.Verify(data ?? Data, OpenPgpSignature.Parse(BcKeys.Armor(sigPacket)),
            OpenPgpPublicKeyRing.ParseAll(BcKeys.Armor(ring, "PGP PUBLIC KEY BLOCK")), policy ?? Policy);

    private static CheckupException Fails(byte[] sigPacket, byte[] ring, byte[]? data = null, OpenPgpPolicy? policy = null) =>
        Assert.Throws<CheckupException>(() => Verify(sigPacket, ring, data, policy))!;

    private static string Fpr(PgpKeyPair k) => Convert.ToHexString(k.PublicKey.GetFingerprint());

    [Test]
    public void Good_Ed25519_ReturnsEvidence()
    {
        var key = BcKeys.Ed25519();
        var v = Verify(BcKeys.Sign(key, Data, Day1), BcKeys.Ring(key));
        Assert.That(v, Is.EqualTo(new OpenPgpVerification(Fpr(key), Fpr(key), new DateTimeOffset(Day1), "SHA256", "EdDSA-Ed25519")));
    }

    [Test]
    public void Good_Rsa2048_FoundByKeyIdWithoutIssuerFingerprint()
    {
        var key = BcKeys.Rsa(2048);
        var v = Verify(BcKeys.Sign(key, Data, Day1, issuerFingerprint: false), BcKeys.Ring(key));
        Assert.That(v.PublicKeyAlgorithm, Is.EqualTo("RSA-2048"));
        Assert.That(v.PrimaryFingerprint, Is.EqualTo(Fpr(key)));
    }

    [Test]
    public void Rsa1024_IsUnsupported()
    {
        var key = BcKeys.Rsa(1024);
        var e = Fails(BcKeys.Sign(key, Data, Day1), BcKeys.Ring(key));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("RSA with 1024 bits; at least 2048"));
    }

    [TestCase(HashAlgorithmTag.Sha1, "SHA1")]
    [TestCase(HashAlgorithmTag.MD5, "MD5")]
    [TestCase(HashAlgorithmTag.RipeMD160, "RIPEMD160")]
    public void WeakHash_IsUnsupported(HashAlgorithmTag hash, string name)
    {
        var key = BcKeys.Rsa(2048);
        var e = Fails(BcKeys.Sign(key, Data, Day1, hash: hash), BcKeys.Ring(key));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain(name));
    }

    [Test]
    public void Tampered_IsInvalid()
    {
        var key = BcKeys.Ed25519();
        var data = (byte[])Data.Clone();
        data[^2] ^= 1;
        var e = Fails(BcKeys.Sign(key, Data, Day1), BcKeys.Ring(key), data);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.InvalidSignature));
    }

    [Test]
    public void ForgedIssuer_PointingAtAllowedKey_IsInvalid()
    {
        // Mallory signs but names the allowed key's fingerprint and id: the lookup finds the key, the maths refuses.
        var allowed = BcKeys.Ed25519();
        var mallory = BcKeys.Ed25519();
        var forged = BcKeys.Sign(new PgpKeyPair(allowed.PublicKey, mallory.PrivateKey), Data, Day1);
        var e = Fails(forged, BcKeys.Ring(allowed));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.InvalidSignature));
    }

    [Test]
    public void UnknownSigner_NamesKeyId()
    {
        var key = BcKeys.Ed25519();
        var other = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(other, Data, Day1), BcKeys.Ring(key));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnknownSigner));
        Assert.That(e.Message, Does.Contain(other.KeyId.ToString("X16", System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public void SignatureBeforeKeyCreation_IsRejected()
    {
        var key = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(key, Data, BcKeys.Created.AddDays(-3)), BcKeys.Ring(key));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.SignatureBeforeKey));
        Assert.That(e.Message, Does.Contain("before the key"));
    }

    [Test]
    public void SignatureFromTheFuture_IsRejected()
    {
        var key = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(key, Data, new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc)), BcKeys.Ring(key));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.BadSignatureTime));
        Assert.That(e.Message, Does.Contain("in the future"));
    }

    [Test]
    public void Expiry_IsJudgedAtSigningTime()
    {
        var key = BcKeys.Ed25519();
        var ring = BcKeys.Ring(key, expirySeconds: 30 * 86400);
        Assert.That(Verify(BcKeys.Sign(key, Data, BcKeys.Created.AddDays(29)), ring).SignatureTime,
            Is.EqualTo(new DateTimeOffset(BcKeys.Created.AddDays(29))), "signed while valid: accepted although expired by now");
        var e = Fails(BcKeys.Sign(key, Data, BcKeys.Created.AddDays(31)), ring);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.KeyExpired));
        Assert.That(e.Message, Does.Contain("expired at 2024-01-31"));
    }

    [Test]
    public void RevokedPrimary_WinsOverSignatureTime()
    {
        var key = BcKeys.Ed25519();
        var ring = BcKeys.Ring(key, revokePrimary: true); // revoked on day 1
        var e = Fails(BcKeys.Sign(key, Data, BcKeys.Created.AddHours(1)), ring);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.KeyRevoked));
        Assert.That(e.Message, Does.Contain("revoked"));
    }

    [Test]
    public void PrimaryNotFlaggedForSigning_IsRejected()
    {
        var key = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(key, Data, Day1), BcKeys.Ring(key, flags: PgpKeyFlags.CanCertify));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.NotSigningKey));
        Assert.That(e.Message, Does.Contain("key flags do not allow signing"));
    }

    [Test]
    public void Subkey_Good()
    {
        var primary = BcKeys.Ed25519();
        var sub = BcKeys.Ed25519(BcKeys.Created.AddHours(1));
        var v = Verify(BcKeys.Sign(sub, Data, Day1), BcKeys.Ring(primary, sub: new(sub, PgpKeyFlags.CanSign)));
        Assert.That((v.PrimaryFingerprint, v.SigningKeyFingerprint), Is.EqualTo((Fpr(primary), Fpr(sub))));
    }

    [Test]
    public void Subkey_WithoutBackSignature_IsNotBound()
    {
        var primary = BcKeys.Ed25519();
        var sub = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(sub, Data, Day1), BcKeys.Ring(primary, sub: new(sub, PgpKeyFlags.CanSign, BackSig: false)));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.SubkeyNotBound));
        Assert.That(e.Message, Does.Contain("back-signature"));
    }

    [Test]
    public void Subkey_WithForgedBinding_IsNotBound()
    {
        var primary = BcKeys.Ed25519();
        var sub = BcKeys.Ed25519();
        var ringBytes = BcKeys.Ring(primary, sub: new(sub, PgpKeyFlags.CanSign, CorruptBinding: true));
        var ring = OpenPgpPublicKeyRing.ParseAll(ringBytes).Single();
        Assert.That(ring.Subkeys.Single().IsBound, Is.False);
        var e = Fails(BcKeys.Sign(sub, Data, Day1), ringBytes);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.SubkeyNotBound));
        Assert.That(e.Message, Does.Contain("no valid binding signature"));
    }

    [Test]
    public void Subkey_EncryptionOnly_IsNotSigningKey()
    {
        var primary = BcKeys.Ed25519();
        var sub = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(sub, Data, Day1), BcKeys.Ring(primary, sub: new(sub, PgpKeyFlags.CanEncryptCommunications)));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.NotSigningKey));
    }

    [Test]
    public void Subkey_Revoked_IsRevoked()
    {
        var primary = BcKeys.Ed25519();
        var sub = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(sub, Data, Day1), BcKeys.Ring(primary, sub: new(sub, PgpKeyFlags.CanSign, Revoke: true)));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.KeyRevoked));
        Assert.That(e.Message, Does.Contain("subkey").And.Contain("revoked"));
    }

    [Test]
    public void CertificationTypeSignature_IsWrongType()
    {
        var key = BcKeys.Ed25519();
        var e = Fails(BcKeys.Sign(key, Data, Day1, type: PgpSignature.PositiveCertification), BcKeys.Ring(key));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.WrongSignatureType));
    }
}
