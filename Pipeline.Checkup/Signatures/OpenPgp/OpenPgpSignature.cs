using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Bcpg.Sig;

namespace Pipeline.Checkup.Signatures.OpenPgp;

/// <summary>
/// One detached OpenPGP signature (a single v4 signature packet, nothing else), parsed and validated.
/// v6 (RFC 9580) is refused with <see cref="OpenPgpErrors.UnsupportedAlgorithm"/>: BouncyCastle 2.7 cannot parse it.
/// The issuer fields come from possibly unhashed subpackets: they are only hints for finding the key; the
/// verifier proves them cryptographically.
/// </summary>
public sealed class OpenPgpSignature
{
    /// <summary>Largest accepted signature input (armoured text), in bytes.</summary>
    public const int MaxInputBytes = 64 * 1024;

    // Subpackets whose meaning for a document signature we honour or that are harmless when critical:
    // creation time, signature expiry, key expiry, preferences, issuer, primary uid, key flags, signer uid, features, issuer fingerprint.
    private static readonly HashSet<int> UnderstoodCritical = [2, 3, 9, 11, 16, 21, 22, 23, 25, 27, 28, 30, 33];

    private OpenPgpSignature(PgpSignature sig, byte[] packet, string? issuerFingerprint)
    {
        Inner = sig;
        Packet = packet;
        IssuerFingerprint = issuerFingerprint;
    }

    internal PgpSignature Inner { get; }

    /// <summary>The raw signature packet.</summary>
    internal byte[] Packet { get; }

    /// <summary>Signature packet version (always 4 today).</summary>
    public int Version => Inner.Version;

    /// <summary>The issuer key id (64-bit, uppercase hex, 16 digits); from the issuer subpacket or the issuer fingerprint.</summary>
    public string IssuerKeyId => Inner.KeyId.ToString("X16", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The issuer fingerprint subpacket (uppercase hex), if present.</summary>
    public string? IssuerFingerprint { get; }

    /// <summary>The signature's creation time (hashed subpacket, so covered by the signature).</summary>
    public DateTimeOffset CreationTime => new(DateTime.SpecifyKind(Inner.CreationTime, DateTimeKind.Utc));

    /// <summary>The hash algorithm id (RFC 9580 section 9.5).</summary>
    public HashAlgorithmTag HashAlgorithm => Inner.HashAlgorithm;

    /// <summary>The public-key algorithm id (RFC 9580 section 9.1).</summary>
    public PublicKeyAlgorithmTag PublicKeyAlgorithm => Inner.KeyAlgorithm;

    /// <summary>The signature type (0x00 = binary document).</summary>
    public int SignatureType => Inner.SignatureType;

    /// <summary>Parses one armoured detached signature (<c>-----BEGIN PGP SIGNATURE-----</c>) as git stores it.</summary>
    public static OpenPgpSignature Parse(string armored)
    {
        ArgumentNullException.ThrowIfNull(armored);
        if (armored.Length > MaxInputBytes)
            throw new CheckupException(OpenPgpErrors.Malformed,
                $"The OpenPGP signature is {armored.Length} characters long; more than {MaxInputBytes} is refused as hostile.");
        var blocks = OpenPgpPackets.Dearmor(armored, "PGP SIGNATURE", allowSurroundingText: false);
        if (blocks.Count != 1)
            throw OpenPgpPackets.Malformed($"{blocks.Count} signature blocks where exactly one was expected");
        return ParseBinary(blocks[0]);
    }

    /// <summary>Parses one binary signature packet.</summary>
    public static OpenPgpSignature ParseBinary(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxInputBytes)
            throw new CheckupException(OpenPgpErrors.Malformed,
                $"The OpenPGP signature is {data.Length} bytes long; more than {MaxInputBytes} is refused as hostile.");
        var packets = OpenPgpPackets.Scan(data, maxPackets: 16);
        if (packets.Count != 1)
            throw OpenPgpPackets.Malformed(
                $"expected exactly one signature packet, found {packets.Count} packets ({string.Join(", ", packets.Select(p => OpenPgpPackets.Describe(p.Tag)))})");
        var p = packets[0];
        if (p.Tag != 2)
            throw OpenPgpPackets.Malformed($"expected a signature packet, found a {OpenPgpPackets.Describe(p.Tag)} packet");
        if (p.BodyLength < 1) throw OpenPgpPackets.Malformed("the signature packet is empty");
        var version = data[p.BodyStart];
        if (version == 6)
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                "The signature is a version 6 (RFC 9580) signature; this verifier (BouncyCastle 2.7) supports version 4 signatures only. Ask the supplier for a v4 signature (gpg 2.2/2.4 default).");
        if (version != 4)
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                $"The signature packet has version {version}; only version 4 signatures are accepted (v3 is obsolete, others unknown).");

        var bytes = data.ToArray();
        PgpSignature sig;
        try
        {
            var obj = new PgpObjectFactory(bytes).NextPgpObject();
            if (obj is not PgpSignatureList list || list.Count != 1)
                throw OpenPgpPackets.Malformed("the packet could not be read as one signature");
            sig = list[0];
            // Force subpacket parsing now so later access cannot fail.
            _ = sig.GetHashedSubPackets();
            _ = sig.GetUnhashedSubPackets();
            _ = sig.CreationTime;
        }
        catch (CheckupException) { throw; }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CheckupException(OpenPgpErrors.Malformed, $"Malformed OpenPGP signature packet: {e.Message}", e);
        }
        if (!sig.GetHashedSubPackets().HasSubpacket(SignatureSubpacketTag.CreationTime))
            throw OpenPgpPackets.Malformed("the signature has no hashed creation time subpacket");

        foreach (var sp in sig.GetHashedSubPackets().ToArray())
        {
            if (sp.IsCritical() && !UnderstoodCritical.Contains((int)sp.SubpacketType))
                throw new CheckupException(OpenPgpErrors.CriticalSubpacket,
                    $"The signature carries a critical subpacket of type {(int)sp.SubpacketType} that this verifier does not understand; " +
                    "RFC 9580 requires such a signature to be rejected.");
        }

        string? issuerFpr = null;
        foreach (var vec in new[] { sig.GetHashedSubPackets(), sig.GetUnhashedSubPackets() })
        {
            foreach (var sp in vec?.GetSubpackets(SignatureSubpacketTag.IssuerFingerprint) ?? [])
            {
                if (sp is IssuerFingerprint f && issuerFpr is null)
                    issuerFpr = Convert.ToHexString(f.GetFingerprint());
            }
        }
        if (sig.KeyId == 0 && issuerFpr is null)
            throw OpenPgpPackets.Malformed("the signature names no issuer (neither issuer key id nor issuer fingerprint)");
        return new OpenPgpSignature(sig, bytes, issuerFpr);
    }
}
