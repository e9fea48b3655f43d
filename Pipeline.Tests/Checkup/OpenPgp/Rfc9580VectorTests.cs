using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;

namespace Pipeline.Tests.Checkup.OpenPgp;

/// <summary>
/// The published RFC 9580 Appendix A test vectors: v6 Ed25519 certificate (A.3) and the v6 signature of the
/// sample cleartext signed message (A.6), and the bare v4 Ed25519Legacy key (A.2). gpg 2.2 and BouncyCastle 2.7
/// cannot create v6 keys or signatures, so these vectors are the only v6 evidence.
/// </summary>
public sealed class Rfc9580VectorTests
{
    // RFC 9580 A.3: v6 Ed25519 primary key + direct-key self-signature + X25519 subkey + binding signature.
    private const string V6Certificate =
        "xioGY4d/4xsAAAAg+U2nu0jWCmHlZ3BqZYfQMxmZu52JGggkLq2EVD34laPCsQYf" +
        "GwoAAABCBYJjh3/jAwsJBwUVCg4IDAIWAAKbAwIeCSIhBssYbE8GCaaX5NUt+mxy" +
        "KwwfHifBilZwj2Ul7Ce62azJBScJAgcCAAAAAK0oIBA+LX0ifsDm185Ecds2v8lw" +
        "gyU2kCcUmKfvBXbAf6rhRYWzuQOwEn7E/aLwIwRaLsdry0+VcallHhSu4RN6HWaE" +
        "QsiPlR4zxP/TP7mhfVEe7XWPxtnMUMtf15OyA51YBM4qBmOHf+MZAAAAIIaTJINn" +
        "+eUBXbki+PSAld2nhJh/LVmFsS+60WyvXkQ1wpsGGBsKAAAALAWCY4d/4wKbDCIh" +
        "BssYbE8GCaaX5NUt+mxyKwwfHifBilZwj2Ul7Ce62azJAAAAAAQBIKbpGG2dWTX8" +
        "j+VjFM21J0hqWlEg+bdiojWnKfA5AQpWUWtnNwDEM0g12vYxoWM8Y81W+bHBw805" +
        "I8kWVkXU6vFOi+HWvv/ira7ofJu16NnoUkhclkUrk0mXubZvyl4GBg==";

    // RFC 9580 A.6: v6 text signature (0x01) over the sample message.
    private const string V6Signature =
        "wpgGARsKAAAAKQWCY5ijYyIhBssYbE8GCaaX5NUt+mxyKwwfHifBilZwj2Ul7Ce6" +
        "2azJAAAAAGk2IHZJX1AhiJD39eLuPBgiUU9wUA9VHYblySHkBONKU/usJ9BvuAqo" +
        "/FvLFuGWMbKAdA+epq7V4HOtAPlBWmU8QOd6aud+aSunHQaaEJ+iTFjP2OMW0KBr" +
        "NK2ay45cX1IVAQ==";

    // RFC 9580 A.2: a bare v4 Ed25519Legacy key packet (no user id, no self-signature).
    private const string V4BareKey = "xjMEU/NfCxYJKwYBBAHaRw8BAQdAPwmJlL3ZFu1AUxl5NOSofIBzOhKA1i+AEJkuQ+47JAY=";

    // GAP: BouncyCastle 2.7.0 throws "unsupported version: 6" on these packets, so we refuse v6 explicitly
    // (UnsupportedAlgorithm with a clear reason) instead of reporting a malformed packet. When BouncyCastle
    // gains v6 support these tests must change to positive verifications of the vectors.
    [Test]
    public void V6Certificate_IsRefusedAsUnsupported()
    {
        var e = Assert.Throws<CheckupException>(() => OpenPgpPublicKeyRing.ParseAll(Convert.FromBase64String(V6Certificate)))!;
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("version 6 (RFC 9580)"));
    }

    [Test]
    public void V6Signature_IsRefusedAsUnsupported()
    {
        var e = Assert.Throws<CheckupException>(() => OpenPgpSignature.Parse(BcKeys.Armor(Convert.FromBase64String(V6Signature))))!;
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("version 6 (RFC 9580)"));
    }

    [Test]
    public void BareKeyWithoutSelfSignature_IsUnusable()
    {
        var e = Assert.Throws<CheckupException>(() => OpenPgpPublicKeyRing.ParseAll(Convert.FromBase64String(V4BareKey)))!;
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnusableKey));
        Assert.That(e.Message, Does.Contain("C959BDBAFA32A2F89A153B678CFDE12197965A9A").And.Contain("no valid self-signature"));
    }
}
