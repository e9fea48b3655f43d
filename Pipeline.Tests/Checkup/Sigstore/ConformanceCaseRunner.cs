using System.Security.Cryptography;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Tests.Checkup.Sigstore;

/// <summary>Runs one case folder in the sigstore-conformance layout through the verifier and asserts the outcome.</summary>
internal static class ConformanceCaseRunner
{
    public static void AssertCase(string dir, string defaultArtifact, string defaultRoot, bool digestMode, IReadOnlyDictionary<string, string> expectedCodes)
    {
        var name = Path.GetFileName(dir);
        string Read(string f) => File.ReadAllText(Path.Combine(dir, f)).Trim();
        bool Has(string f) => File.Exists(Path.Combine(dir, f));

        var artifactBytes = File.ReadAllBytes(Has("artifact") ? Path.Combine(dir, "artifact") : defaultArtifact);
        var artifact = digestMode
            ? ArtifactInput.FromDigest("sha256:" + Convert.ToHexStringLower(SHA256.HashData(artifactBytes)))
            : ArtifactInput.FromBytes(artifactBytes);
        var identity = Has("identity") ? Read("identity") : SigstoreConformanceTests.DefaultIdentity;
        var policy = Has("key.pub")
            ? VerificationPolicy.ForPublicKey(File.ReadAllText(Path.Combine(dir, "key.pub")))
            : VerificationPolicy.ForIdentity(identity, Has("issuer") ? Read("issuer") : SigstoreConformanceTests.DefaultIssuer);
        var rootText = File.ReadAllText(Has("trusted_root.json") ? Path.Combine(dir, "trusted_root.json") : defaultRoot);

        // The trusted root is part of what a case tests (an incomplete root must be refused), so it is parsed inside the run.
        SigstoreVerificationResult Run() => SigstoreVerifier.Verify(SigstoreBundle.Parse(File.ReadAllText(Path.Combine(dir, "bundle.sigstore.json"))), artifact, policy, TrustedRoot.Parse(rootText));

        if (name.EndsWith("_fail", StringComparison.Ordinal))
        {
            Assert.That(expectedCodes.TryGetValue(name, out var expected), Is.True, $"no expected code recorded for case {name}; read its README and add one");
            var ex = Assert.Throws<CheckupException>(() => Run());
            Assert.That(ex!.Code, Is.EqualTo(expected), ex.Message);
            Assert.That(ex.Message, Is.Not.Empty);
        }
        else
        {
            var result = Run();
            Assert.That(result.VerifiedTimes, Is.Not.Empty);
            Assert.That(result.LogIndexes, Is.Not.Empty);
            if (!Has("key.pub"))
            {
                Assert.That(result.SignerIdentity, Is.EqualTo(identity));
                Assert.That(result.Checks.Select(c => c.Name), Does.Contain("certificate-chain").And.Contain("sct").And.Contain("identity"));
            }
            Assert.That(result.Checks.Select(c => c.Name), Does.Contain("tlog-entry-body"));
        }
    }
}
