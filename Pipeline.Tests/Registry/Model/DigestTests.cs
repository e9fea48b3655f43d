using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Model;

public class DigestTests
{
    private const string Hex64 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    [Test]
    public void Compute_matches_known_sha256_of_hello()
    {
        var d = Digest.Compute(Encoding.ASCII.GetBytes("hello"));
        Assert.That(d.ToString(), Is.EqualTo("sha256:" + Hex64));
        Assert.That(d.Hex, Is.EqualTo(Hex64));
        Assert.That(d.Algorithm, Is.EqualTo("sha256"));
    }

    [Test]
    public void Parse_roundtrips_and_is_value_equal()
    {
        Assert.That(Digest.Parse("sha256:" + Hex64), Is.EqualTo(Digest.Compute(Encoding.ASCII.GetBytes("hello"))));
        var sha512 = "sha512:" + new string('a', 128);
        Assert.That(Digest.Parse(sha512).ToString(), Is.EqualTo(sha512));
    }

    [TestCase("SHA256:" + Hex64, "unsupported algorithm")]
    [TestCase("sha256:2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824", "lowercase")]
    [TestCase("sha256:" + Hex64 + "0", "needs 64 hex characters, got 65")]
    [TestCase("sha256:abc", "needs 64 hex characters, got 3")]
    [TestCase("sha512:" + Hex64, "needs 128 hex characters")]
    [TestCase("md5:d41d8cd98f00b204e9800998ecf8427e", "unsupported algorithm")]
    [TestCase("sha384:" + Hex64, "unsupported algorithm")]
    [TestCase(Hex64, "expected 'algorithm:hex'")]
    [TestCase(" sha256:" + Hex64, "unsupported algorithm")]
    [TestCase("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982g", "lowercase 0-9a-f")]
    [TestCase("", "empty")]
    public void Parse_rejects_malformed(string input, string reason)
    {
        var ex = Assert.Throws<RegistryException>(() => Digest.Parse(input))!;
        Assert.That(ex.Code, Is.EqualTo("REG-DIGEST-001"));
        Assert.That(ex.Message, Does.Contain(reason));
    }
}
