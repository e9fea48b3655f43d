using Org.BouncyCastle.Bcpg.OpenPgp;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;

namespace Pipeline.Tests.Checkup.OpenPgp;

/// <summary>Parsing the allow-list: verified self-signatures only, bounded and strict input.</summary>
public sealed class OpenPgpPublicKeyRingTests
{
    private static CheckupException Fails(byte[] data) =>
        Assert.Throws<CheckupException>(() => OpenPgpPublicKeyRing.ParseAll(data))!;

    [Test]
    public void Parse_ExposesVerifiedFacts()
    {
        var key = BcKeys.Ed25519();
        var sub = BcKeys.Ed25519(BcKeys.Created.AddDays(2));
        var ring = OpenPgpPublicKeyRing.Parse(BcKeys.Armor(BcKeys.Ring(key, "Supplier <s@example>", expirySeconds: 86400 * 10,
            sub: new(sub, PgpKeyFlags.CanSign)), "PGP PUBLIC KEY BLOCK"));
        Assert.That(ring.PrimaryFingerprint, Has.Length.EqualTo(40).And.EqualTo(Convert.ToHexString(key.PublicKey.GetFingerprint())));
        Assert.That(ring.UserIds, Is.EqualTo(new[] { "Supplier <s@example>" }));
        Assert.That(ring.Primary.ExpirationTime, Is.EqualTo(new DateTimeOffset(BcKeys.Created.AddDays(10))));
        Assert.That(ring.Primary.CanSign, Is.True);
        var s = ring.Subkeys.Single();
        Assert.That((s.IsBound, s.CanSign, s.IsRevoked, s.CreationTime), Is.EqualTo((true, true, false, new DateTimeOffset(BcKeys.Created.AddDays(2)))));
    }

    [Test]
    public void UidWithBrokenSelfSignature_IsIgnored_AndKeyWithoutAnyIsUnusable()
    {
        var e = Fails(BcKeys.Ring(BcKeys.Ed25519(), corruptUidCert: true));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnusableKey));
        Assert.That(e.Message, Does.Contain("no valid self-signature"));
    }

    [Test]
    public void SecretKey_IsRefused()
    {
        var e = Fails(BcKeys.Packet(5, [4, 0, 0, 0, 0, 22]));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnusableKey));
        Assert.That(e.Message, Does.Contain("secret key"));
    }

    [Test]
    public void StartsWithUserId_IsMalformed()
    {
        var e = Fails([.. BcKeys.Packet(13, "x <x@x>"u8.ToArray()), .. BcKeys.Ring(BcKeys.Ed25519())]);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("starts with a user id packet"));
    }

    [Test]
    public void LiteralDataInsideKeyRing_IsMalformed()
    {
        var e = Fails([.. BcKeys.Ring(BcKeys.Ed25519()), .. BcKeys.Packet(11, [(byte)'b', 0, 0, 0, 0, 0])]);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("literal data packet does not belong"));
    }

    [Test]
    public void Version3Key_IsUnsupported()
    {
        var e = Fails(BcKeys.Packet(6, [3, 0, 0, 0, 0, 0, 0, 1]));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("version 3"));
    }

    [Test]
    public void ParseSingle_WithTwoKeys_AndDuplicates_AreUnusable()
    {
        var a = BcKeys.Ring(BcKeys.Ed25519());
        var b = BcKeys.Ring(BcKeys.Ed25519());
        Assert.That(OpenPgpPublicKeyRing.ParseAll([.. a, .. b]), Has.Count.EqualTo(2));
        var e = Assert.Throws<CheckupException>(() => OpenPgpPublicKeyRing.Parse(BcKeys.Armor([.. a, .. b], "PGP PUBLIC KEY BLOCK")))!;
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnusableKey));
        Assert.That(e.Message, Does.Contain("exactly one"));
        e = Fails([.. a, .. a]);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnusableKey));
        Assert.That(e.Message, Does.Contain("more than once"));
    }

    [Test]
    public void OversizedInput_IsRefused()
    {
        var e = Fails(new byte[OpenPgpPublicKeyRing.MaxInputBytes + 1]);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("refused"));
    }

    [Test]
    public void RandomMutations_NeverEscapeAsAnythingButCheckupException()
    {
        var good = BcKeys.Ring(BcKeys.Ed25519(), sub: new(BcKeys.Ed25519(), PgpKeyFlags.CanSign));
        var rnd = new Random(9580);
        for (var i = 0; i < 1500; i++)
        {
            var bytes = (byte[])good.Clone();
            for (var k = rnd.Next(1, 4); k > 0; k--) bytes[rnd.Next(bytes.Length)] = (byte)rnd.Next(256);
            if (rnd.Next(4) == 0) bytes = bytes[..rnd.Next(1, bytes.Length)];
            try
            {
                OpenPgpPublicKeyRing.ParseAll(bytes);
            }
            catch (CheckupException e)
            {
                Assert.That(e.Code, Does.StartWith("CHK-PGP-"));
            }
        }
    }
}
