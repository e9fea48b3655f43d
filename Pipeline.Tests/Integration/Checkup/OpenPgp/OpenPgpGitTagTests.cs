using System.Globalization;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Checkup.Signatures.OpenPgp;

namespace Pipeline.Tests.Integration.Checkup.OpenPgp;

/// <summary>
/// Differential tests: real gpg keys, real git tags signed by git+gpg, verified by our
/// <see cref="OpenPgpVerifier"/> and by the reference tools (<c>git verify-tag</c> and <c>gpgv</c>, each with
/// only the allowed public keys). Every case asserts our error code and reason, and what gpg says; where we are
/// deliberately stricter or laxer than gpg the test says so.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class OpenPgpGitTagTests
{
    private GpgLab _lab = null!;
    private string _ed = "", _rsa = "", _p256 = "", _withSub = "", _sub = "", _other = "", _expiring = "", _expired = "", _revoked = "", _rsa1024 = "", _subRevPrimary = "", _subRev = "", _p384 = "", _brainpool = "", _dsa = "";

    [OneTimeSetUp]
    public void SetUp()
    {
        _lab = new GpgLab();
        _ed = _lab.GenKey("Ed Supplier <ed@supplier.example>", "ed25519");
        _rsa = _lab.GenKey("Rsa Supplier <rsa@supplier.example>", "rsa3072");
        _p256 = _lab.GenKey("P256 Supplier <p256@supplier.example>", "nistp256");
        _withSub = _lab.GenKey("Sub Supplier <sub@supplier.example>", "ed25519");
        _sub = _lab.AddSigningSubkey(_withSub, "ed25519");
        _other = _lab.GenKey("Mallory <mallory@evil.example>", "ed25519");
        // Created 2020 without expiry; signs "now"; later (as of mid-2020) given an expiry of 2021: expired at signing.
        _expired = _lab.GenKey("Expired Supplier <expired@supplier.example>", "ed25519", "never", "20200101T000000");
        // Created 2020, expires 2021; signs in March 2020, while valid.
        _expiring = _lab.GenKey("Expiring Supplier <expiring@supplier.example>", "ed25519", "1y", "20200101T000000");
        _revoked = _lab.GenKey("Revoked Supplier <revoked@supplier.example>", "ed25519");
        _rsa1024 = _lab.GenKey("Weak Supplier <weak@supplier.example>", "rsa1024");
        _p384 = _lab.GenKey("P384 Supplier <p384@supplier.example>", "nistp384");
        _brainpool = _lab.GenKey("Brainpool Supplier <bp@supplier.example>", "brainpoolP256r1");
        _dsa = _lab.GenKey("Dsa Supplier <dsa@supplier.example>", "dsa2048");
        _subRevPrimary = _lab.GenKey("SubRev Supplier <subrev@supplier.example>", "ed25519");
        _subRev = _lab.AddSigningSubkey(_subRevPrimary, "ed25519");

        _lab.SignTag("v-ed", _ed);
        _lab.SignTag("v-rsa", _rsa);
        _lab.SignTag("v-p256", _p256);
        _lab.SignTag("v-sub", _sub + "!");
        _lab.SignTag("v-other", _other);
        _lab.SignTag("v-expired", _expired);
        _lab.SetExpire(_expired, "1y", "20200601T000000");
        _lab.SignTag("v-before-expiry", _expiring, "--faked-system-time", "20200301T000000");
        _lab.SignTag("v-revoked", _revoked);
        _lab.Revoke(_revoked);
        _lab.SignTag("v-sha1", _ed, "--digest-algo", "SHA1");
        _lab.SignTag("v-weak", _rsa1024);
        _lab.SignTag("v-p384", _p384);
        _lab.SignTag("v-brainpool", _brainpool);
        _lab.SignTag("v-dsa", _dsa);
        _lab.SignTag("v-subrev", _subRev + "!");
        _lab.RevokeSubkey(_subRevPrimary, 1);
    }

    [OneTimeTearDown]
    public void TearDown() => _lab.Dispose();

    private (GitSignedPayload Split, OpenPgpSignature Sig) Load(string tag)
    {
        var raw = _lab.RawTag(tag);
        GitTagObject.Verify(raw, _lab.TagId(tag));
        var split = GitTagObject.Split(raw);
        Assert.That(split.Kind, Is.EqualTo(GitSignatureKind.OpenPgp));
        return (split, OpenPgpSignature.Parse(Encoding.ASCII.GetString(split.Signature)));
    }

    private OpenPgpVerification Ours(string tag, params string[] allowed)
    {
        var (split, sig) = Load(tag);
        return OpenPgpVerifier.Verify(split.Payload, sig, OpenPgpPublicKeyRing.ParseAll(_lab.ExportPublic(allowed)), OpenPgpPolicy.Default);
    }

    private CheckupException OursFails(string tag, params string[] allowed) =>
        Assert.Throws<CheckupException>(() => Ours(tag, allowed))!;

    private (int Exit, string Output) Gpgv(string tag, params string[] allowed)
    {
        var split = GitTagObject.Split(_lab.RawTag(tag));
        return _lab.Gpgv(split.Payload, split.Signature, allowed);
    }

    /// <summary>The VALIDSIG status line's fields (fingerprint, date, timestamp, ..., pubkey algo, hash algo, class, primary fpr).</summary>
    private static string[] ValidSig(string gpgOutput) =>
        gpgOutput.Split('\n').Single(l => l.StartsWith("[GNUPG:] VALIDSIG ", StringComparison.Ordinal)).Split(' ')[2..];

    private static readonly Dictionary<string, string> GpgHashIds = new()
    {
        ["2"] = "SHA1", ["8"] = "SHA256", ["9"] = "SHA384", ["10"] = "SHA512", ["11"] = "SHA224",
    };

    private void AssertGoodAndSameAsGpg(string tag, string primary, string signingKey, string algorithm)
    {
        var ours = Ours(tag, primary);
        Assert.That(ours.PrimaryFingerprint, Is.EqualTo(primary));
        Assert.That(ours.SigningKeyFingerprint, Is.EqualTo(signingKey));
        Assert.That(ours.PublicKeyAlgorithm, Is.EqualTo(algorithm));

        var git = _lab.GitVerifyTag(tag, primary);
        Assert.That(git.Exit, Is.Zero, git.Output);
        Assert.That(git.Output, Does.Contain("[GNUPG:] GOODSIG"));
        var v = ValidSig(git.Output);
        Assert.That(v[0], Is.EqualTo(signingKey), "gpg's signing key");
        Assert.That(v[9], Is.EqualTo(primary), "gpg's primary key");
        Assert.That(ours.SignatureTime.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), Is.EqualTo(v[2]), "signature time");
        Assert.That(ours.HashAlgorithm, Is.EqualTo(GpgHashIds[v[7]]), "hash algorithm");

        var gpgv = Gpgv(tag, primary);
        Assert.That(gpgv.Exit, Is.Zero, gpgv.Output);
        Assert.That(gpgv.Output, Does.Contain("[GNUPG:] GOODSIG"));
    }

    [Test]
    public void Good_Ed25519() => AssertGoodAndSameAsGpg("v-ed", _ed, _ed, "EdDSA-Ed25519");

    [Test]
    public void Good_Rsa3072() => AssertGoodAndSameAsGpg("v-rsa", _rsa, _rsa, "RSA-3072");

    [Test]
    public void Good_EcdsaP256() => AssertGoodAndSameAsGpg("v-p256", _p256, _p256, "ECDSA-P256");

    [Test]
    public void Good_EcdsaP384() => AssertGoodAndSameAsGpg("v-p384", _p384, _p384, "ECDSA-P384");

    /// <summary>DIFFERENCE: gpg accepts ECDSA on Brainpool curves; our policy accepts only the NIST curves.</summary>
    [Test]
    public void BrainpoolEcdsa_IsRejectedByUs_ButAcceptedByGpg()
    {
        var e = OursFails("v-brainpool", _brainpool);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("only the NIST curves"));
        var git = _lab.GitVerifyTag("v-brainpool", _brainpool);
        Assert.That(git.Exit, Is.Zero, git.Output);
    }

    /// <summary>DIFFERENCE: gpg accepts DSA signatures; we do not support DSA at all.</summary>
    [Test]
    public void Dsa_IsRejectedByUs_ButAcceptedByGpg()
    {
        var e = OursFails("v-dsa", _dsa);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("DSA"));
        var git = _lab.GitVerifyTag("v-dsa", _dsa);
        Assert.That(git.Exit, Is.Zero, git.Output);
    }

    [Test]
    public void Good_ViaSigningSubkey() => AssertGoodAndSameAsGpg("v-sub", _withSub, _sub, "EdDSA-Ed25519");

    [Test]
    public void Good_WithArmoredAllowListOfSeveralKeys()
    {
        var (split, sig) = Load("v-rsa");
        var rings = OpenPgpPublicKeyRing.ParseAll(_lab.ExportArmored(_ed, _rsa, _p256));
        Assert.That(rings.Select(r => r.PrimaryFingerprint), Is.EquivalentTo(new[] { _ed, _rsa, _p256 }));
        var ours = OpenPgpVerifier.Verify(split.Payload, sig, rings, OpenPgpPolicy.Default);
        Assert.That(ours.PrimaryFingerprint, Is.EqualTo(_rsa));
    }

    [Test]
    public void WrongKey_NotOnAllowList_IsUnknownSigner()
    {
        var e = OursFails("v-other", _ed, _rsa);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnknownSigner));
        Assert.That(e.Message, Does.Contain(_other[^16..]), "names the signer's key id");
        Assert.That(e.Message, Does.Contain("allow-list"));

        var git = _lab.GitVerifyTag("v-other", _ed, _rsa);
        Assert.That(git.Exit, Is.Not.Zero);
        Assert.That(git.Output, Does.Contain("[GNUPG:] NO_PUBKEY " + _other[^16..]));
        var gpgv = Gpgv("v-other", _ed, _rsa);
        Assert.That(gpgv.Exit, Is.Not.Zero);
        Assert.That(gpgv.Output, Does.Contain("NO_PUBKEY"));
    }

    [Test]
    public void Tampered_Message_IsInvalidSignature()
    {
        var raw = _lab.RawTag("v-ed");
        var text = Encoding.UTF8.GetString(raw);
        var forged = Encoding.UTF8.GetBytes(text.Replace("release v-ed", "release v-EVIL", StringComparison.Ordinal));
        Assert.That(forged, Is.Not.EqualTo(raw));
        var split = GitTagObject.Split(forged);
        var sig = OpenPgpSignature.Parse(Encoding.ASCII.GetString(split.Signature));
        var e = Assert.Throws<CheckupException>(() => OpenPgpVerifier.Verify(split.Payload, sig, OpenPgpPublicKeyRing.ParseAll(_lab.ExportPublic(_ed)), OpenPgpPolicy.Default))!;
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.InvalidSignature));
        Assert.That(e.Message, Does.Contain("altered"));

        var id = _lab.WriteTagObject(forged);
        var git = _lab.GitVerifyTag(id, _ed);
        Assert.That(git.Exit, Is.Not.Zero);
        Assert.That(git.Output, Does.Contain("[GNUPG:] BADSIG"));
        var gpgv = _lab.Gpgv(split.Payload, split.Signature, _ed);
        Assert.That(gpgv.Exit, Is.Not.Zero);
        Assert.That(gpgv.Output, Does.Contain("BADSIG"));
    }

    [Test]
    public void ExpiredAtSigningTime_IsKeyExpired()
    {
        var e = OursFails("v-expired", _expired);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.KeyExpired));
        Assert.That(e.Message, Does.Contain("expired at 2021-06-01"));

        var git = _lab.GitVerifyTag("v-expired", _expired);
        Assert.That(git.Exit, Is.Not.Zero, "git verify-tag rejects an expired key");
        Assert.That(git.Output, Does.Contain("[GNUPG:] EXPKEYSIG"));

        // DIFFERENCE: gpgv only reports EXPKEYSIG in its status output and still exits 0; its exit code alone accepts.
        var gpgv = Gpgv("v-expired", _expired);
        Assert.That(gpgv.Exit, Is.Zero, gpgv.Output);
        Assert.That(gpgv.Output, Does.Contain("[GNUPG:] EXPKEYSIG"));
    }

    /// <summary>
    /// DIFFERENCE: a signature made while the key was valid stays acceptable to us after the key expires
    /// ("valid at signing time"); git verify-tag (EXPKEYSIG) rejects it because gpg judges expiry by today's date.
    /// </summary>
    [Test]
    public void SignedBeforeExpiry_IsAcceptedByUs_ButGitRejectsExpiredKeyToday()
    {
        var ours = Ours("v-before-expiry", _expiring);
        Assert.That(ours.SignatureTime, Is.EqualTo(new DateTimeOffset(2020, 3, 1, 0, 0, 0, TimeSpan.Zero)).Within(TimeSpan.FromMinutes(1)));
        var ring = OpenPgpPublicKeyRing.Parse(_lab.ExportArmored(_expiring));
        Assert.That(ring.Primary.ExpirationTime, Is.LessThan(DateTimeOffset.UtcNow), "the key has expired by now");

        var git = _lab.GitVerifyTag("v-before-expiry", _expiring);
        Assert.That(git.Exit, Is.Not.Zero);
        Assert.That(git.Output, Does.Contain("[GNUPG:] EXPKEYSIG"));
    }

    [Test]
    public void RevokedKey_IsRevoked_EvenForSignatureMadeBeforeRevocation()
    {
        var ring = OpenPgpPublicKeyRing.Parse(_lab.ExportArmored(_revoked));
        Assert.That(ring.Primary.IsRevoked, Is.True);
        var e = OursFails("v-revoked", _revoked);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.KeyRevoked));
        Assert.That(e.Message, Does.Contain("revoked"));

        var git = _lab.GitVerifyTag("v-revoked", _revoked);
        Assert.That(git.Exit, Is.Not.Zero);
        Assert.That(git.Output, Does.Contain("[GNUPG:] REVKEYSIG"));

        // DIFFERENCE: gpgv reports REVKEYSIG but exits 0; its exit code alone accepts a revoked key.
        var gpgv = Gpgv("v-revoked", _revoked);
        Assert.That(gpgv.Exit, Is.Zero, gpgv.Output);
        Assert.That(gpgv.Output, Does.Contain("[GNUPG:] REVKEYSIG"));
    }

    [Test]
    public void RevokedSigningSubkey_IsRevoked()
    {
        var ring = OpenPgpPublicKeyRing.Parse(_lab.ExportArmored(_subRevPrimary));
        Assert.That(ring.Primary.IsRevoked, Is.False);
        Assert.That(ring.Subkeys.Single(k => k.Fingerprint == _subRev).IsRevoked, Is.True);
        var e = OursFails("v-subrev", _subRevPrimary);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.KeyRevoked));
        Assert.That(e.Message, Does.Contain("subkey " + _subRev).And.Contain("revoked"));

        var git = _lab.GitVerifyTag("v-subrev", _subRevPrimary);
        Assert.That(git.Exit, Is.Not.Zero, git.Output);
        Assert.That(git.Output, Does.Contain("[GNUPG:] REVKEYSIG"));
    }

    [Test]
    public void GarbageArmour_IsMalformed()
    {
        var text = Encoding.ASCII.GetString(_lab.RawTag("v-ed"));
        var start = text.IndexOf("-----BEGIN PGP SIGNATURE-----\n\n", StringComparison.Ordinal) + 31;
        var forged = Encoding.ASCII.GetBytes(text[..start] + "!!garbage*not*base64!!\n" + text[(start + 10)..]);
        var split = GitTagObject.Split(forged);
        var e = Assert.Throws<CheckupException>(() => OpenPgpSignature.Parse(Encoding.ASCII.GetString(split.Signature)))!;
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.Malformed));
        Assert.That(e.Message, Does.Contain("base64"));

        var git = _lab.GitVerifyTag(_lab.WriteTagObject(forged), _ed);
        Assert.That(git.Exit, Is.Not.Zero);
        Assert.That(git.Output, Does.Not.Contain("GOODSIG"));
    }

    /// <summary>
    /// DIFFERENCE: gpg 2.2 still accepts SHA-1 data signatures (GOODSIG); we reject them as a policy choice
    /// (SHA-1 is collision-broken and a collision on the signed payload would let a supplier's signature cover other content).
    /// </summary>
    [Test]
    public void Sha1Signature_IsRejectedByUs_ButAcceptedByGpg()
    {
        var (_, sig) = Load("v-sha1");
        Assert.That(sig.HashAlgorithm, Is.EqualTo(Org.BouncyCastle.Bcpg.HashAlgorithmTag.Sha1));
        var e = OursFails("v-sha1", _ed);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("SHA1"));

        var git = _lab.GitVerifyTag("v-sha1", _ed);
        Assert.That(git.Exit, Is.Zero, "gpg 2.2 accepts SHA-1 signatures: " + git.Output);
        Assert.That(ValidSig(git.Output)[7], Is.EqualTo("2"), "gpg reports hash algorithm 2 (SHA-1)");
    }

    /// <summary>DIFFERENCE: gpg 2.2 accepts RSA-1024 signatures; our policy requires at least 2048 bits.</summary>
    [Test]
    public void Rsa1024_IsRejectedByUs_ButAcceptedByGpg()
    {
        var e = OursFails("v-weak", _rsa1024);
        Assert.That(e.Code, Is.EqualTo(OpenPgpErrors.UnsupportedAlgorithm));
        Assert.That(e.Message, Does.Contain("1024 bits"));

        var git = _lab.GitVerifyTag("v-weak", _rsa1024);
        Assert.That(git.Exit, Is.Zero, git.Output);
    }

    [Test]
    public void KeyRingFacts_MatchGpgListing()
    {
        var rings = OpenPgpPublicKeyRing.ParseAll(_lab.ExportPublic(_withSub, _expired, _revoked, _rsa));
        var byFpr = rings.ToDictionary(r => r.PrimaryFingerprint);

        var withSub = byFpr[_withSub];
        Assert.That(withSub.UserIds, Is.EqualTo(new[] { "Sub Supplier <sub@supplier.example>" }));
        var sub = withSub.Subkeys.Single(k => k.Fingerprint == _sub);
        Assert.That((sub.IsBound, sub.CanSign, sub.IsRevoked), Is.EqualTo((true, true, false)));

        Assert.That(byFpr[_expired].Primary.ExpirationTime, Is.EqualTo(new DateTimeOffset(2021, 6, 1, 0, 0, 0, TimeSpan.Zero)));
        Assert.That(byFpr[_revoked].Primary.IsRevoked, Is.True);
        Assert.That(byFpr[_rsa].Primary.Algorithm, Is.EqualTo("RSA-3072"));

        // gpg's own view (validity field 2 of the pub line: e = expired, r = revoked; field 7 = expiry timestamp).
        foreach (var (fpr, ring) in byFpr)
        {
            var pub = GpgPubLine(fpr);
            Assert.That(pub[1] == "r", Is.EqualTo(ring.Primary.IsRevoked), $"revoked flag for {fpr}");
            var gpgExpiry = pub[6].Length == 0 ? (long?)null : long.Parse(pub[6], CultureInfo.InvariantCulture);
            Assert.That(ring.Primary.ExpirationTime?.ToUnixTimeSeconds(), Is.EqualTo(gpgExpiry), $"expiry of {fpr}");
            Assert.That(ring.Primary.CreationTime.ToUnixTimeSeconds(), Is.EqualTo(long.Parse(pub[5], CultureInfo.InvariantCulture)), $"creation of {fpr}");
        }
    }

    private string[] GpgPubLine(string fpr) => _lab.ListColons(fpr).Split('\n').First(l => l.StartsWith("pub:", StringComparison.Ordinal)).Split(':');
}
