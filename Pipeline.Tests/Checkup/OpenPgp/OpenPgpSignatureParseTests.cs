using System.Text;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;

namespace Pipeline.Tests.Checkup.OpenPgp;

/// <summary>Hostile and malformed signature input: always a <see cref="CheckupException"/> with a precise code, never a crash.</summary>
public sealed class OpenPgpSignatureParseTests
{
    private static readonly byte[] Data = "object abc\n\nrelease\n"u8.ToArray();
    private static readonly PgpKeyPair Key = BcKeys.Ed25519();
    private static readonly byte[] GoodPacket = BcKeys.Sign(Key, Data, BcKeys.Created.AddDays(1));

    private static CheckupException Fails(string armored) => Assert.Throws<CheckupException>(() => OpenPgpSignature.Parse(armored))!;

    [Test]
    public void Good_ExposesIssuerTimeAndAlgorithms()
    {
        var sig = OpenPgpSignature.Parse(BcKeys.Armor(GoodPacket));
        Assert.That(sig.Version, Is.EqualTo(4));
        Assert.That(sig.IssuerKeyId, Is.EqualTo(Key.KeyId.ToString("X16", System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(sig.IssuerFingerprint, Is.EqualTo(Convert.ToHexString(Key.PublicKey.GetFingerprint())));
        Assert.That(sig.CreationTime, Is.EqualTo(new DateTimeOffset(BcKeys.Created.AddDays(1))));
        Assert.That(sig.HashAlgorithm, Is.EqualTo(HashAlgorithmTag.Sha256));
        Assert.That(sig.PublicKeyAlgorithm, Is.EqualTo(PublicKeyAlgorithmTag.EdDsa_Legacy));
    }

    [TestCase("hello world", "unexpected text outside")]
    [TestCase("", "no '-----BEGIN PGP SIGNATURE-----' block")]
    [TestCase("-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n", "where '-----BEGIN PGP SIGNATURE-----' was expected")]
    [TestCase("-----BEGIN PGP SIGNATURE-----\n\niQ!!\n-----END PGP SIGNATURE-----\n", "not base64")]
    [TestCase("-----BEGIN PGP SIGNATURE-----\n\niQAB\n", "no '-----END PGP SIGNATURE-----' line")]
    [TestCase("-----BEGIN PGP SIGNATURE-----\niQAB\n-----END PGP SIGNATURE-----\n", "not 'Key: Value'")]
    [TestCase("-----BEGIN PGP SIGNATURE-----\n\n\n-----END PGP SIGNATURE-----\n", "empty")]
    [TestCase("-----BEGIN PGP SIGNATURE-----\n\niQA\n-----END PGP SIGNATURE-----\n", "not valid base64")]
    public void GarbageArmour_IsMalformed(string text, string reason)
    {
        var e = Fails(text);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain(reason));
    }

    [Test]
    public void TextAroundTheBlock_IsMalformed()
    {
        var e = Fails("note: trust me\n" + BcKeys.Armor(GoodPacket));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("outside"));
    }

    [Test]
    public void BadCrc_IsMalformed()
    {
        var e = Fails(BcKeys.Armor(GoodPacket, badCrc: true));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("CRC-24"));
    }

    [Test]
    public void Truncated_AtEveryLength_IsMalformed()
    {
        for (var n = 1; n < GoodPacket.Length; n++)
        {
            var e = Assert.Throws<CheckupException>(() => OpenPgpSignature.Parse(BcKeys.Armor(GoodPacket[..n])), $"cut at {n}")!;
            Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed), $"cut at {n}: {e.Message}");
        }
    }

    [Test]
    public void HugeLengthHeader_IsMalformed_WithoutAllocating()
    {
        byte[] forged = [0xC2, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x04, 0x00];
        var e = Fails(BcKeys.Armor(forged));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("claims 2147483647 bytes"));
    }

    [Test]
    public void OldFormatFourByteLength_Huge_IsMalformed()
    {
        byte[] forged = [0x8A, 0xFF, 0xFF, 0xFF, 0xFF, 0x04];
        var e = Fails(BcKeys.Armor(forged));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("claims 4294967295 bytes"));
    }

    [Test]
    public void PartialLength_IsMalformed()
    {
        var e = Fails(BcKeys.Armor([0xC2, 0xE1, 0x04, 0x00, 0x01]));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("partial body length"));
    }

    [Test]
    public void IndeterminateLength_IsMalformed()
    {
        var e = Fails(BcKeys.Armor([0x8B, 0x04, 0x00]));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("indeterminate length"));
    }

    [Test]
    public void CompressedPacket_IsRejected_EvenWhenDeeplyNested()
    {
        // A signature wrapped in 40 layers of compression: refused at the first layer, nothing is inflated.
        var bytes = GoodPacket;
        for (var i = 0; i < 40; i++)
        {
            var ms = new MemoryStream();
            var gen = new PgpCompressedDataGenerator(CompressionAlgorithmTag.Zip);
            using (var s = gen.Open(ms)) s.Write(bytes);
            bytes = ms.ToArray();
        }
        var e = Fails(BcKeys.Armor(bytes));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("compressed data"));

        // Same with a definite length header.
        e = Fails(BcKeys.Armor(BcKeys.Packet(8, [1, 0x78, 0x9c, 0x03, 0x00])));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("found a compressed data packet"));
    }

    [Test]
    public void LiteralDataPacket_IsRejected()
    {
        var e = Fails(BcKeys.Armor(BcKeys.Packet(11, [(byte)'b', 0, 0, 0, 0, 0, (byte)'x'])));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("literal data"));
    }

    [Test]
    public void SignatureFollowedByLiteralData_IsRejected()
    {
        var e = Fails(BcKeys.Armor([.. GoodPacket, .. BcKeys.Packet(11, [(byte)'b', 0, 0, 0, 0, 0])]));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("found 2 packets (signature, literal data)"));
    }

    [Test]
    public void TwoSignatures_AreRejected()
    {
        var other = BcKeys.Sign(BcKeys.Ed25519(), Data, BcKeys.Created.AddDays(1));
        var e = Fails(BcKeys.Armor([.. GoodPacket, .. other]));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("exactly one signature packet, found 2"));
    }

    [TestCase((byte)3)]
    [TestCase((byte)5)]
    [TestCase((byte)9)]
    public void UnknownOrObsoleteVersion_IsUnsupported(byte version)
    {
        var body = GoodPacket[2..].ToArray();
        body[0] = version;
        var e = Fails(BcKeys.Armor(BcKeys.Packet(2, body)));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain($"version {version}"));
    }

    [Test]
    public void OversizedInput_IsRefusedBeforeDecoding()
    {
        var big = BcKeys.Armor(new byte[OpenPgpSignature.MaxInputBytes]);
        var e = Fails(big);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("refused as hostile"));
    }

    [Test]
    public void UnknownCriticalSubpacket_IsRejected()
    {
        var packet = BcKeys.Sign(Key, Data, BcKeys.Created.AddDays(1), criticalNotation: "must-understand@supplier.example");
        var e = Fails(BcKeys.Armor(packet));
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.CriticalSubpacket));
        Assert.That(e.Message, Does.Contain("critical subpacket of type 20"));
    }

    [Test]
    public void RandomMutations_NeverEscapeAsAnythingButCheckupException()
    {
        var rnd = new Random(4880);
        for (var i = 0; i < 3000; i++)
        {
            var bytes = (byte[])GoodPacket.Clone();
            for (var k = rnd.Next(1, 4); k > 0; k--) bytes[rnd.Next(bytes.Length)] = (byte)rnd.Next(256);
            try
            {
                OpenPgpSignature.Parse(BcKeys.Armor(bytes));
            }
            catch (CheckupException e)
            {
                Assert.That(e.Code, Does.StartWith("CHK-PGP-"));
            }
        }
    }
}
