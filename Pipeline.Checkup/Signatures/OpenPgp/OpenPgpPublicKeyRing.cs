using System.Globalization;
using System.Text;
using Org.BouncyCastle.Asn1.Nist;
using Org.BouncyCastle.Asn1.Sec;
using Org.BouncyCastle.Bcpg;
using Org.BouncyCastle.Bcpg.OpenPgp;
using Org.BouncyCastle.Bcpg.Sig;

namespace Pipeline.Checkup.Signatures.OpenPgp;

/// <summary>
/// One key (primary or subkey) of a parsed public key ring, with the facts its cryptographically verified
/// self-signatures establish. Unverifiable self-signatures are ignored, as if absent.
/// </summary>
/// <param name="Fingerprint">Uppercase hex fingerprint (40 digits for v4, 64 for v6).</param>
/// <param name="KeyId">Uppercase hex 64-bit key id (16 digits).</param>
/// <param name="IsPrimary">true for the primary key.</param>
/// <param name="Algorithm">Readable algorithm, e.g. <c>RSA-3072</c>, <c>ECDSA-P256</c>, <c>EdDSA-Ed25519</c>, <c>Ed25519</c>.</param>
/// <param name="CreationTime">Key creation time.</param>
/// <param name="ExpirationTime">When the key expires per its latest valid self-signature; null: never.</param>
/// <param name="IsRevoked">A valid revocation signature (by the primary key) exists.</param>
/// <param name="IsBound">Primary: has a valid self-signature. Subkey: has a valid binding signature.</param>
/// <param name="CanSign">Flagged for signing (or, without key flags, its algorithm signs); a subkey also needs a valid back-signature.</param>
/// <param name="Problem">Why the key cannot sign, if it cannot; null otherwise.</param>
public sealed record OpenPgpKey(
    string Fingerprint, string KeyId, bool IsPrimary, string Algorithm, DateTimeOffset CreationTime,
    DateTimeOffset? ExpirationTime, bool IsRevoked, bool IsBound, bool CanSign, string? Problem)
{
    internal PgpPublicKey Inner { get; init; } = null!;
}

/// <summary>
/// An OpenPGP transferable public key (RFC 9580 section 10.1) from the operator's allow-list: primary key,
/// verified user ids and subkeys. Parsing is bounded (<see cref="MaxInputBytes"/>) and strict; secret keys are refused.
/// </summary>
public sealed class OpenPgpPublicKeyRing
{
    /// <summary>Largest accepted key ring input, in bytes.</summary>
    public const int MaxInputBytes = 1024 * 1024;

    private OpenPgpPublicKeyRing(OpenPgpKey primary, IReadOnlyList<string> userIds, IReadOnlyList<OpenPgpKey> subkeys)
    {
        Primary = primary;
        UserIds = userIds;
        Subkeys = subkeys;
    }

    /// <summary>The primary key.</summary>
    public OpenPgpKey Primary { get; }

    /// <summary>The primary key's fingerprint, uppercase hex.</summary>
    public string PrimaryFingerprint => Primary.Fingerprint;

    /// <summary>User ids with a valid self-certification and no valid revocation.</summary>
    public IReadOnlyList<string> UserIds { get; }

    /// <summary>All subkeys, bound or not (see <see cref="OpenPgpKey.IsBound"/>).</summary>
    public IReadOnlyList<OpenPgpKey> Subkeys { get; }

    /// <summary>The primary key followed by its subkeys.</summary>
    public IEnumerable<OpenPgpKey> AllKeys => Subkeys.Prepend(Primary);

    /// <summary>Parses exactly one public key, armoured (<c>-----BEGIN PGP PUBLIC KEY BLOCK-----</c>) or binary.</summary>
    public static OpenPgpPublicKeyRing Parse(string armoredOrBinary)
    {
        var all = ParseAll(armoredOrBinary);
        if (all.Count != 1)
            throw new CheckupException(OpenPgpErrors.UnusableKey,
                $"Expected exactly one OpenPGP public key but found {all.Count} ({string.Join(", ", all.Select(r => r.PrimaryFingerprint))}); use ParseAll for several.");
        return all[0];
    }

    /// <summary>
    /// Parses one or more public keys: armoured text (several blocks allowed, text around them ignored) or
    /// binary packets carried in a string one byte per char (Latin-1).
    /// </summary>
    public static IReadOnlyList<OpenPgpPublicKeyRing> ParseAll(string armoredOrBinary)
    {
        ArgumentNullException.ThrowIfNull(armoredOrBinary);
        if (armoredOrBinary.Length > MaxInputBytes)
            throw new CheckupException(OpenPgpErrors.Malformed,
                $"The OpenPGP key input is {armoredOrBinary.Length} characters long; more than {MaxInputBytes} is refused.");
        if (armoredOrBinary.Length > 0 && armoredOrBinary[0] >= 0x80 && armoredOrBinary[0] <= 0xff)
            return ParseAll(Encoding.Latin1.GetBytes(armoredOrBinary));
        var blocks = OpenPgpPackets.Dearmor(armoredOrBinary, "PGP PUBLIC KEY BLOCK", allowSurroundingText: true);
        return blocks.SelectMany(ParseBinaryAll).ToList();
    }

    /// <summary>Parses one or more public keys from bytes, armoured or binary.</summary>
    public static IReadOnlyList<OpenPgpPublicKeyRing> ParseAll(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxInputBytes)
            throw new CheckupException(OpenPgpErrors.Malformed,
                $"The OpenPGP key input is {data.Length} bytes long; more than {MaxInputBytes} is refused.");
        if (data.Length > 0 && (data[0] & 0x80) == 0)
            return ParseAll(Encoding.Latin1.GetString(data));
        return ParseBinaryAll(data.ToArray());
    }

    private static List<OpenPgpPublicKeyRing> ParseBinaryAll(byte[] data)
    {
        var packets = OpenPgpPackets.Scan(data, maxPackets: 50_000);
        var rings = new List<OpenPgpPublicKeyRing>();
        var ringStart = -1;
        for (var i = 0; i < packets.Count; i++)
        {
            var p = packets[i];
            switch (p.Tag)
            {
                case 5 or 7:
                    throw new CheckupException(OpenPgpErrors.UnusableKey,
                        "The key input contains secret key material; put only public keys (gpg --export) on the allow-list, and treat this secret key as exposed.");
                case 6:
                    if (ringStart >= 0) rings.Add(ParseRing(data, packets[ringStart].Start, p.Start));
                    ringStart = i;
                    CheckKeyVersion(data, p);
                    break;
                case 2 or 12 or 13 or 14 or 17 or 21:
                    if (p.Tag == 14) CheckKeyVersion(data, p);
                    if (ringStart < 0)
                        throw OpenPgpPackets.Malformed($"the key data starts with a {OpenPgpPackets.Describe(p.Tag)} packet, not a public key packet");
                    break;
                default:
                    throw OpenPgpPackets.Malformed($"a {OpenPgpPackets.Describe(p.Tag)} packet does not belong in a public key");
            }
        }
        if (ringStart < 0) throw OpenPgpPackets.Malformed("no public key packet found");
        rings.Add(ParseRing(data, packets[ringStart].Start, data.Length));
        var dup = rings.GroupBy(r => r.PrimaryFingerprint).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new CheckupException(OpenPgpErrors.UnusableKey, $"The key {dup.Key} appears more than once in the key input.");
        return rings;
    }

    private static void CheckKeyVersion(byte[] data, PacketSpan p)
    {
        if (p.BodyLength < 1) throw OpenPgpPackets.Malformed("empty key packet");
        var v = data[p.BodyStart];
        if (v == 6)
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                "A key packet has version 6 (RFC 9580); this verifier (BouncyCastle 2.7) supports version 4 keys only.");
        if (v != 4)
            throw new CheckupException(OpenPgpErrors.UnsupportedAlgorithm,
                $"A key packet has version {v}; only version 4 keys are accepted.");
    }

    private static OpenPgpPublicKeyRing ParseRing(byte[] data, int start, int end)
    {
        PgpPublicKeyRing ring;
        List<PgpPublicKey> keys;
        try
        {
            ring = new PgpPublicKeyRing(data[start..end]);
            keys = ring.GetPublicKeys().ToList();
        }
        catch (Exception e) when (e is not OutOfMemoryException and not CheckupException)
        {
            throw new CheckupException(OpenPgpErrors.Malformed, $"Malformed OpenPGP public key: {e.Message}", e);
        }
        var primary = keys[0];
        var primaryFpr = Convert.ToHexString(primary.GetFingerprint());

        // Primary key revocation (0x20) by the primary key itself. Designated revokers are not honoured.
        var revoked = Sigs(primary, PgpSignature.KeyRevocation)
            .Any(s => IssuedBy(s, primary) && Try(() => { s.InitVerify(primary); return s.VerifyCertification(primary); }));

        // Self-certifications per user id; a user id with a valid revocation is dropped.
        var userIds = new List<string>();
        var selfSigs = new List<PgpSignature>();
        foreach (var uid in SafeUserIds(primary))
        {
            var sigs = SafeSigsForId(primary, uid).Where(s => IssuedBy(s, primary)).ToList();
            var certs = sigs.Where(s => s.SignatureType is >= 0x10 and <= 0x13
                && Try(() => { s.InitVerify(primary); return s.VerifyCertification(uid, primary); })).ToList();
            var uidRevoked = sigs.Any(s => s.SignatureType == PgpSignature.CertificationRevocation
                && Try(() => { s.InitVerify(primary); return s.VerifyCertification(uid, primary); }));
            if (certs.Count == 0 || uidRevoked) continue;
            userIds.Add(uid);
            selfSigs.AddRange(certs);
        }
        selfSigs.AddRange(Sigs(primary, PgpSignature.DirectKey)
            .Where(s => IssuedBy(s, primary) && Try(() => { s.InitVerify(primary); return s.VerifyCertification(primary); })));

        var latest = selfSigs.OrderByDescending(s => s.CreationTime).FirstOrDefault();
        if (latest is null)
            throw new CheckupException(OpenPgpErrors.UnusableKey,
                $"The key {primaryFpr} has no valid self-signature (no user id certification or direct-key signature verifies); it cannot be trusted.");
        var (primaryCanSign, primaryProblem) = CanSign(primary, latest.GetHashedSubPackets());
        var primaryKey = Describe(primary, true, Expiry(primary, latest), revoked, true, primaryCanSign, primaryProblem);

        var subkeys = new List<OpenPgpKey>();
        foreach (var sub in keys.Skip(1))
        {
            var bindings = Sigs(sub, PgpSignature.SubkeyBinding)
                .Where(s => IssuedBy(s, primary) && Try(() => { s.InitVerify(primary); return s.VerifyCertification(primary, sub); }))
                .OrderByDescending(s => s.CreationTime).ToList();
            var subRevoked = Sigs(sub, PgpSignature.SubkeyRevocation)
                .Any(s => IssuedBy(s, primary) && Try(() => { s.InitVerify(primary); return s.VerifyCertification(primary, sub); }));
            if (bindings.Count == 0)
            {
                subkeys.Add(Describe(sub, false, null, subRevoked, false, false,
                    "it has no valid binding signature from its primary key"));
                continue;
            }
            var binding = bindings[0];
            var (canSign, problem) = CanSign(sub, binding.GetHashedSubPackets());
            if (canSign && !HasValidBackSignature(binding, primary, sub))
                (canSign, problem) = (false, "it is flagged for signing but has no valid back-signature (primary key binding signature, type 0x19), so the subkey never agreed to sign for this key");
            subkeys.Add(Describe(sub, false, Expiry(sub, binding), subRevoked, true, canSign, problem));
        }
        return new OpenPgpPublicKeyRing(primaryKey, userIds, subkeys);
    }

    private static bool HasValidBackSignature(PgpSignature binding, PgpPublicKey primary, PgpPublicKey sub)
    {
        foreach (var vec in new[] { binding.GetHashedSubPackets(), binding.GetUnhashedSubPackets() })
        {
            if (vec is null) continue;
            PgpSignatureList embedded;
            try { embedded = vec.GetEmbeddedSignatures(); }
            catch (Exception e) when (e is not OutOfMemoryException) { continue; }
            for (var i = 0; i < embedded.Count; i++)
            {
                var bs = embedded[i];
                if (bs.SignatureType == PgpSignature.PrimaryKeyBinding
                    && Try(() => { bs.InitVerify(sub); return bs.VerifyCertification(primary, sub); }))
                    return true;
            }
        }
        return false;
    }

    private static (bool, string?) CanSign(PgpPublicKey key, PgpSignatureSubpacketVector? hashed)
    {
        var flags = hashed?.GetSubpackets(SignatureSubpacketTag.KeyFlags).OfType<KeyFlags>().FirstOrDefault();
        if (flags is not null)
            return (flags.Flags & PgpKeyFlags.CanSign) != 0 ? (true, null) : (false, "its key flags do not allow signing");
        return key.Algorithm is PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign or PublicKeyAlgorithmTag.Dsa
            or PublicKeyAlgorithmTag.ECDsa or PublicKeyAlgorithmTag.EdDsa_Legacy or PublicKeyAlgorithmTag.Ed25519 or PublicKeyAlgorithmTag.Ed448
            ? (true, null)
            : (false, "its algorithm cannot sign");
    }

    private static DateTimeOffset? Expiry(PgpPublicKey key, PgpSignature selfSig)
    {
        var secs = selfSig.GetHashedSubPackets()?.GetKeyExpirationTime() ?? 0;
        if (secs <= 0) return null;
        return Utc(key.CreationTime).AddSeconds(secs);
    }

    private static OpenPgpKey Describe(PgpPublicKey k, bool isPrimary, DateTimeOffset? expiry, bool revoked, bool bound, bool canSign, string? problem) =>
        new(Convert.ToHexString(k.GetFingerprint()), k.KeyId.ToString("X16", CultureInfo.InvariantCulture), isPrimary,
            AlgorithmName(k), Utc(k.CreationTime), expiry, revoked, bound, canSign, problem) { Inner = k };

    internal static string AlgorithmName(PgpPublicKey k)
    {
        try
        {
            return k.Algorithm switch
            {
                PublicKeyAlgorithmTag.RsaGeneral or PublicKeyAlgorithmTag.RsaSign or PublicKeyAlgorithmTag.RsaEncrypt => $"RSA-{k.BitStrength}",
                PublicKeyAlgorithmTag.ECDsa => "ECDSA-" + CurveName(((ECPublicBcpgKey)k.PublicKeyPacket.Key).CurveOid),
                PublicKeyAlgorithmTag.ECDH => "ECDH-" + CurveName(((ECPublicBcpgKey)k.PublicKeyPacket.Key).CurveOid),
                PublicKeyAlgorithmTag.EdDsa_Legacy => "EdDSA-Ed25519",
                PublicKeyAlgorithmTag.Ed25519 => "Ed25519",
                PublicKeyAlgorithmTag.Ed448 => "Ed448",
                PublicKeyAlgorithmTag.X25519 => "X25519",
                PublicKeyAlgorithmTag.X448 => "X448",
                PublicKeyAlgorithmTag.Dsa => $"DSA-{k.BitStrength}",
                PublicKeyAlgorithmTag.ElGamalEncrypt or PublicKeyAlgorithmTag.ElGamalGeneral => $"ElGamal-{k.BitStrength}",
                _ => $"algorithm-{(int)k.Algorithm}",
            };
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return $"algorithm-{(int)k.Algorithm}";
        }
    }

    internal static string CurveName(Org.BouncyCastle.Asn1.DerObjectIdentifier oid) =>
        oid.Equals(SecObjectIdentifiers.SecP256r1) ? "P256"
        : oid.Equals(SecObjectIdentifiers.SecP384r1) ? "P384"
        : oid.Equals(SecObjectIdentifiers.SecP521r1) ? "P521"
        : oid.Id;

    internal static bool IssuedBy(PgpSignature s, PgpPublicKey key)
    {
        if (s.KeyId == key.KeyId) return true;
        foreach (var vec in new[] { s.GetHashedSubPackets(), s.GetUnhashedSubPackets() })
            foreach (var f in vec?.GetSubpackets(SignatureSubpacketTag.IssuerFingerprint).OfType<IssuerFingerprint>() ?? [])
                if (f.GetFingerprint().AsSpan().SequenceEqual(key.GetFingerprint())) return true;
        return false;
    }

    private static List<PgpSignature> Sigs(PgpPublicKey key, int type)
    {
        try { return key.GetSignaturesOfType(type).ToList(); }
        catch (Exception e) when (e is not OutOfMemoryException) { return []; }
    }

    private static List<string> SafeUserIds(PgpPublicKey key)
    {
        try { return key.GetUserIds().ToList(); }
        catch (Exception e) when (e is not OutOfMemoryException) { return []; }
    }

    private static List<PgpSignature> SafeSigsForId(PgpPublicKey key, string uid)
    {
        try { return key.GetSignaturesForId(uid).ToList(); }
        catch (Exception e) when (e is not OutOfMemoryException) { return []; }
    }

    private static bool Try(Func<bool> check)
    {
        try { return check(); }
        catch (Exception e) when (e is not OutOfMemoryException) { return false; }
    }

    internal static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}
