using System.Security.Cryptography;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Sigstore;

/// <summary>
/// Every case of the offline sigstore-conformance bundle-verify suite, in artifact-file and
/// sha256-digest mode. `_fail` cases must be rejected with the code that names the README's reason.
/// </summary>
[TestFixture]
public class SigstoreConformanceTests
{
    private const string Rel = "vectors/sigstore-conformance/bundle-verify";
    internal const string DefaultIdentity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    internal const string DefaultIssuer = "https://token.actions.githubusercontent.com";

    /// <summary>Expected rejection code per `_fail` case, from each case's README.</summary>
    private static readonly Dictionary<string, string> ExpectedCodes = new()
    {
        ["bundle-empty-certificate-chain_fail"] = SigstoreCodes.BundleMalformed,      // empty certificate chain
        ["bundle-invalid-base64-signature_fail"] = SigstoreCodes.BundleMalformed,     // invalid base64 signature
        ["bundle-malformed-json_fail"] = SigstoreCodes.BundleMalformed,               // truncated JSON
        ["bundle-negative-log-index_fail"] = SigstoreCodes.BundleMalformed,           // negative log index
        ["bundle-unknown-version_fail"] = SigstoreCodes.BundleMalformed,              // unknown media type version
        ["checkpoint-bad-keyhint_fail"] = SigstoreCodes.CheckpointSignature,          // checkpoint sig not from the log (key hint)
        ["dsse-invalid-sig_fail"] = SigstoreCodes.DsseSignature,                      // DSSE signature incorrect
        ["dsse-mismatch-envelope_fail"] = SigstoreCodes.TlogEntryMismatch,            // envelope does not match the entry
        ["incorrect-public-key_fail"] = SigstoreCodes.TlogEntryMismatch,              // key in hashedrekord entry modified
        ["intoto-expired-certificate_fail"] = SigstoreCodes.CertChain,                // cert outside validity
        ["intoto-log-entry-mismatch_fail"] = SigstoreCodes.TlogEntryMismatch,         // entry does not match the envelope
        ["intoto-missing-inclusion-proof_fail"] = SigstoreCodes.TlogInclusion,        // v0.2 without inclusion proof
        ["intoto-tsa-timestamp-outside-cert-validity_fail"] = SigstoreCodes.CertChain, // TSA time outside cert validity
        ["invalid-checkpoint-signature_fail"] = SigstoreCodes.CheckpointSignature,    // checkpoint signature invalid
        ["invalid-inclusion-proof_fail"] = SigstoreCodes.TlogInclusion,               // stale inclusion proof
        ["managed-key-no-key_fail"] = SigstoreCodes.PolicyMismatch,                   // key-signed but no key given
        ["managed-key-wrong-key_fail"] = SigstoreCodes.KeyInvalid,                    // wrong (corrupted) key given
        ["rekor2-checkpoint-missing-log-signature_fail"] = SigstoreCodes.CheckpointSignature, // log signature removed
        ["rekor2-checkpoint-missing-origin_fail"] = SigstoreCodes.CheckpointMalformed, // origin line removed
        ["rekor2-checkpoint-missing-size_fail"] = SigstoreCodes.CheckpointMalformed,  // size line removed
        ["rekor2-checkpoint-no-matching-signature_fail"] = SigstoreCodes.CheckpointSignature, // signer identity not the log
        ["rekor2-dsse-invalid-sig_fail"] = SigstoreCodes.DsseSignature,               // envelope signed by another key
        ["rekor2-dsse-mismatch-sig_fail"] = SigstoreCodes.TlogEntryMismatch,          // envelope sig differs from logged sig
        ["rekor2-no-inclusion-proof_fail"] = SigstoreCodes.TlogInclusion,             // inclusion proof removed
        ["rekor2-no-timestamp_fail"] = SigstoreCodes.TimestampMissing,                // rekor v2 without TSA timestamp
        ["rekor2-timestamp-outside-trust-root-tsa-validity_fail"] = SigstoreCodes.Tsa, // TSA validity in root ended
        ["rekor2-timestamp-outside-tsa-cert-validity_fail"] = SigstoreCodes.Tsa,      // TSA cert expired
        ["rekor2-timestamp-payload-mismatch_fail"] = SigstoreCodes.Tsa,               // timestamp over another signature
        ["rekor2-timestamp-untrusted-tsa-with-embedded-cert_fail"] = SigstoreCodes.Tsa, // TSA not in trusted root
        ["set-invalid-signature_fail"] = SigstoreCodes.Set,                           // SET invalid
        ["signature-mismatch_fail"] = SigstoreCodes.MessageSignature,                 // signature incorrect
        ["wrong-hashedrekord-artifact_fail"] = SigstoreCodes.TlogEntryMismatch,       // entry for another artifact
        ["wrong-hashedrekord-entry_fail"] = SigstoreCodes.TlogEntryMismatch,          // hashedrekord for another entry
        ["wrong-material_fail"] = SigstoreCodes.ArtifactMismatch,                     // artifact differs
        ["trust-root-tlog-missing-validity-start_fail"] = SigstoreCodes.TrustedRootMalformed, // log key validity without start (upstream case)
    };

    private static IEnumerable<TestCaseData> Cases()
    {
        var shared = TestServices.SharedDir;
        var dir = shared is null ? null : Path.Combine(shared, Rel);
        if (dir is null || !Directory.Exists(dir))
        {
            yield return new TestCaseData("(shared vectors absent)", false).SetName("Conformance(shared vectors absent)");
            yield break;
        }
        foreach (var d in Directory.GetDirectories(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal))
        {
            foreach (var digest in new[] { false, true })
                yield return new TestCaseData(d, digest).SetName($"Conformance({d},{(digest ? "digest" : "file")})");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Case(string name, bool digestMode)
    {
        var root = TestServices.RequireShared(Rel);
        ConformanceCaseRunner.AssertCase(Path.Combine(root, name), Path.Combine(root, "a.txt"),
            Path.Combine(root, "..", "production_trusted_root.json"), digestMode, ExpectedCodes);
    }

    [Test]
    public void EveryFailCaseHasAnExpectedCode()
    {
        var root = TestServices.RequireShared(Rel);
        var failCases = Directory.GetDirectories(root).Select(Path.GetFileName).Where(n => n!.EndsWith("_fail", StringComparison.Ordinal)).ToList();
        Assert.That(failCases, Is.SubsetOf(ExpectedCodes.Keys));
    }

    [Test]
    public void WrongIdentityIsRejectedWithIdentityCode()
    {
        var root = TestServices.RequireShared(Rel);
        var bundle = SigstoreBundle.Parse(File.ReadAllText(Path.Combine(root, "happy-path-v0.3", "bundle.sigstore.json")));
        var trusted = TrustedRoot.Parse(File.ReadAllText(Path.Combine(root, "..", "production_trusted_root.json")));
        var artifact = ArtifactInput.FromBytes(File.ReadAllBytes(Path.Combine(root, "a.txt")));
        var ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, artifact,
            VerificationPolicy.ForIdentity("https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main", DefaultIssuer), trusted));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.Identity));
        ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, artifact,
            VerificationPolicy.ForIdentity(DefaultIdentity, "https://accounts.google.com"), trusted));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.Issuer));
    }

    [Test]
    public void UntrustedLogIsRejected()
    {
        var root = TestServices.RequireShared(Rel);
        var bundle = SigstoreBundle.Parse(File.ReadAllText(Path.Combine(root, "happy-path-v0.3", "bundle.sigstore.json")));
        // The staging root does not hold the production Rekor key.
        var staging = TrustedRoot.Parse(File.ReadAllText(Path.Combine(root, "..", "staging_trusted_root.json")));
        var ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, ArtifactInput.FromBytes(File.ReadAllBytes(Path.Combine(root, "a.txt"))),
            VerificationPolicy.ForIdentity(DefaultIdentity, DefaultIssuer), staging));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.TlogMissing));
    }
    private static (SigstoreBundle Bundle, TrustedRoot Root, ArtifactInput Artifact) HappyV03()
    {
        var root = TestServices.RequireShared(Rel);
        return (SigstoreBundle.Parse(File.ReadAllText(Path.Combine(root, "happy-path-v0.3", "bundle.sigstore.json"))),
            TrustedRoot.Parse(File.ReadAllText(Path.Combine(root, "..", "production_trusted_root.json"))),
            ArtifactInput.FromBytes(File.ReadAllBytes(Path.Combine(root, "a.txt"))));
    }

    [Test]
    public void WithoutTrustedCtLogsTheSctCheckFails()
    {
        var (bundle, root, artifact) = HappyV03();
        var ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, artifact, VerificationPolicy.ForIdentity(DefaultIdentity, DefaultIssuer), root with { Ctlogs = [] }));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.Sct));
    }

    [Test]
    public void WithoutTrustedFulcioTheChainCheckFails()
    {
        var (bundle, root, artifact) = HappyV03();
        var ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, artifact, VerificationPolicy.ForIdentity(DefaultIdentity, DefaultIssuer), root with { CertificateAuthorities = [] }));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.CertChain));
    }

    [Test]
    public void TlogKeyValidityEndingBeforeIntegratedTimeFails()
    {
        var (bundle, root, artifact) = HappyV03();
        var shortened = root with { Tlogs = [.. root.Tlogs.Select(l => l with { ValidFor = new TimeWindow(l.ValidFor.Start, DateTimeOffset.FromUnixTimeSeconds(bundle.TlogEntries[0].IntegratedTime - 1)) })] };
        var ex = Assert.Throws<CheckupException>(() => SigstoreVerifier.Verify(bundle, artifact, VerificationPolicy.ForIdentity(DefaultIdentity, DefaultIssuer), shortened));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.TlogKeyValidity));
    }

    [Test]
    public void HappyPathReportsEvidence()
    {
        var (bundle, root, artifact) = HappyV03();
        var r = SigstoreVerifier.Verify(bundle, artifact, VerificationPolicy.ForIdentity(DefaultIdentity, DefaultIssuer), root);
        Assert.That(r.Issuer, Is.EqualTo(DefaultIssuer));
        Assert.That(r.LogIndexes, Is.EqualTo(new[] { 79571823L }));
        Assert.That(r.VerifiedTimes, Is.EqualTo(new[] { DateTimeOffset.FromUnixTimeSeconds(1710869186) }));
        Assert.That(r.Checks.Select(c => c.Name), Is.SupersetOf(new[] { "message-signature", "tlog-entry-body", "tlog-inclusion", "checkpoint-signature", "signed-entry-timestamp", "integrated-time", "certificate-chain", "sct", "identity" }));
    }
}

