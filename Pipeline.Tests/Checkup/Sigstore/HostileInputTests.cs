using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Tests.Checkup.Sigstore;

/// <summary>Hostile bundles, roots and checkpoints must end in a clear CheckupException, never a crash.</summary>
[TestFixture]
public class HostileInputTests
{
    private const string Sig = "MEUCIQDM0YxJn7VsUc7FvU7SBXelSzFUWewaeQlbhP5mbpVnawIhAPaZ5dns1a38KgelWWCs1SW1lyrXxVz2RtiiFKDOELlC";

    private static string Bundle(string mediaType = "application/vnd.dev.sigstore.bundle.v0.3+json", string logIndex = "\"1\"", string signature = Sig, string cert = "MIIB")
        => $$$"""
        {"mediaType":"{{{mediaType}}}","verificationMaterial":{"certificate":{"rawBytes":"{{{cert}}}"},
         "tlogEntries":[{"logIndex":{{{logIndex}}},"logId":{"keyId":"AAAA"},"kindVersion":{"kind":"hashedrekord","version":"0.0.1"},
           "integratedTime":"1","canonicalizedBody":"e30="}]},
         "messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AAAA"},"signature":"{{{signature}}}"}}
        """;

    private static CheckupException Rejects(string json, string expectedMessagePart)
    {
        var ex = Assert.Throws<CheckupException>(() => SigstoreBundle.Parse(json));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.BundleMalformed));
        Assert.That(ex.Message, Does.Contain(expectedMessagePart));
        return ex;
    }

    [Test]
    public void WellFormedSkeletonParses()
    {
        var b = SigstoreBundle.Parse(Bundle());
        Assert.That(b.MinorVersion, Is.EqualTo(3));
        Assert.That(b.TlogEntries[0].LogIndex, Is.EqualTo(1));
    }

    [Test]
    public void MalformedJson() => Rejects(Bundle()[..40], "not valid JSON");

    [Test]
    public void TruncatedBase64() => Rejects(Bundle(signature: Sig[..^3]), "base64");

    [Test]
    public void Base64WithWhitespaceOrJunk() => Rejects(Bundle(signature: "MEUC IQ=="), "base64");

    [Test]
    public void DeeplyNestedJson()
    {
        var deep = new string('[', 5000) + new string(']', 5000);
        Rejects($$"""{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","x":{{deep}}}""", "not valid JSON");
    }

    [Test]
    public void HugeStringIsRefused()
    {
        var huge = new string('A', 40 * 1024 * 1024);
        Rejects(Bundle(signature: huge), "too large");
    }

    [Test]
    public void HugeFieldInsideLimitIsRefusedByFieldLimit() => Rejects(Bundle(signature: new string('A', 128 * 1024)), "too long");

    [Test]
    public void DuplicateTlogEntries()
    {
        var entry = """{"logIndex":"1","logId":{"keyId":"AAAA"},"kindVersion":{"kind":"hashedrekord","version":"0.0.1"},"integratedTime":"1","canonicalizedBody":"e30="}""";
        Rejects(Bundle().Replace("\"tlogEntries\":[", "\"tlogEntries\":[" + entry + ","), "same log entry");
    }

    [Test]
    public void NegativeLogIndex() => Rejects(Bundle(logIndex: "\"-5\""), "negative");

    [Test]
    public void NonNumericLogIndex() => Rejects(Bundle(logIndex: "\"12abc\""), "64-bit integer");

    [Test]
    public void UnknownMediaType() => Rejects(Bundle(mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.4"), "Unsupported bundle mediaType");

    [Test]
    public void NotAnObject() => Rejects("[1,2,3]", "JSON object");

    [Test]
    public void MissingContent()
        => Rejects("""{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"},"tlogEntries":[]}}""", "exactly one of messageSignature or dsseEnvelope");

    [Test]
    public void TwoKindsOfVerificationMaterial()
        => Rejects(Bundle().Replace("\"certificate\":{\"rawBytes\":\"MIIB\"}", "\"certificate\":{\"rawBytes\":\"MIIB\"},\"publicKey\":{\"hint\":\"x\"}"), "exactly one of certificate");

    [Test]
    public void GarbageCertificateIsMalformedNotACrash()
    {
        var bundle = SigstoreBundle.Parse(Bundle());
        var root = new TrustedRoot([], [], [], []);
        var ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, ArtifactInput.FromBytes([1]), VerificationPolicy.ForIdentity("a", "b"), root));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.BundleMalformed));
    }

    [Test]
    public void TrustedRootMalformed()
    {
        var ex = Assert.Throws<CheckupException>(() => TrustedRoot.Parse("""{"tlogs":[{"publicKey":{"rawBytes":"!!"},"logId":{"keyId":"AA=="}}]}"""));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.TrustedRootMalformed));
        Assert.That(ex.Message, Does.Contain("base64"));
    }

    [Test]
    public void DigestArgumentMustBeSha256Hex()
    {
        Assert.Throws<ArgumentException>(() => ArtifactInput.FromDigest("sha256:xyz"));
        Assert.That(ArtifactInput.FromDigest("sha256:" + new string('a', 64)).Sha256, Has.Length.EqualTo(32));
    }
}

[TestFixture]
public class CheckpointTests
{
    private const string Good = "log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u2014 log.example 8w1amdbj1mjNN674dHAkD92+QZoEgBC7o0mXYSTRluDjQrOPjrps3zQB9ut+ShLepyZPsWBDi5IB3yXyjgjQT6OG9A8=\n";

    [Test]
    public void ParsesOriginSizeRootAndSignature()
    {
        var cp = Checkpoint.Parse(Good);
        Assert.That(cp.Origin, Is.EqualTo("log.example"));
        Assert.That(cp.TreeSize, Is.EqualTo(736));
        Assert.That(cp.RootHash, Has.Length.EqualTo(32));
        Assert.That(cp.SignedText, Is.EqualTo("log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n"));
        Assert.That(cp.Signatures.Single().Name, Is.EqualTo("log.example"));
        Assert.That(Convert.ToHexString(cp.Signatures[0].KeyHint), Is.EqualTo("F30D5A99"));
        Assert.That(cp.Signatures[0].Signature, Has.Length.EqualTo(64));
    }

    [TestCase("736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u2014 log.example 8w1amdbj\n", "origin, size and root hash")]
    [TestCase("log.example\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u2014 log.example 8w1amdbj\n", "origin, size and root hash")]
    [TestCase("log.example\n-1\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n\u2014 log.example 8w1amdbj\n", "decimal tree size")]
    [TestCase("log.example\n736\nAAAA\n\n\u2014 log.example 8w1amdbj\n", "expected 32")]
    [TestCase("log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n", "no blank line")]
    [TestCase("log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n- log.example 8w1amdbj\n", "em dash")]
    public void MalformedCheckpointsAreRejected(string note, string reason)
    {
        var ex = Assert.Throws<CheckupException>(() => Checkpoint.Parse(note));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.CheckpointMalformed));
        Assert.That(ex.Message, Does.Contain(reason));
    }

    [Test]
    public void CheckpointWithoutSignaturesIsASignatureFailure()
    {
        var ex = Assert.Throws<CheckupException>(() => Checkpoint.Parse("log.example\n736\nrs1YPY0ydAV0lxgfrq5pE4oRpUJwo3syeps5+eGUTDI=\n\n"));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.CheckpointSignature));
    }

    [Test]
    public void DssePaeMatchesSpec()
    {
        var pae = SigstoreVerifier.Pae("http://example.com/HelloWorld", Encoding.UTF8.GetBytes("hello world"));
        Assert.That(Encoding.UTF8.GetString(pae), Is.EqualTo("DSSEv1 29 http://example.com/HelloWorld 11 hello world"));
    }
}
