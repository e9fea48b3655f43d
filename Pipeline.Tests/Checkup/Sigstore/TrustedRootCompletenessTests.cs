using System.Text.Json.Nodes;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Cli;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Sigstore;

/// <summary>
/// A trusted root with an incomplete entry is refused as a whole, naming the field, instead of reading
/// the gap as "unbounded" or "any key". Each row takes the root of the conformance case
/// <c>trust-root-tlog-validity-end-inclusive</c> (which verifies as is) and removes or breaks one field.
/// </summary>
[TestFixture]
public class TrustedRootCompletenessTests
{
    private const string Case = "vectors/sigstore-conformance/bundle-verify/trust-root-tlog-validity-end-inclusive";

    private static JsonObject Root() => JsonNode.Parse(File.ReadAllText(Path.Combine(TestServices.RequireShared(Case), "trusted_root.json")))!.AsObject();

    private static JsonObject At(JsonObject root, string list, int i) => root[list]![i]!.AsObject();

    /// <summary>The tlog that signs the case's bundle (the one whose validity the case is about).</summary>
    private static JsonObject Tlog(JsonObject r) => r["tlogs"]!.AsArray().Select(n => n!.AsObject())
        .Single(t => (string?)t["logId"]!["keyId"] == "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0=");

    private static readonly Dictionary<string, (Action<JsonObject> Break, string Names)> Breaks = new()
    {
        ["tlog validFor.start"] = (r => Tlog(r)["publicKey"]!["validFor"]!.AsObject().Remove("start"), "publicKey.validFor.start is missing"),
        ["tlog validFor"] = (r => Tlog(r)["publicKey"]!.AsObject().Remove("validFor"), "publicKey.validFor is missing"),
        ["tlog logId"] = (r => Tlog(r).Remove("logId"), ".logId is missing"),
        ["tlog rawBytes"] = (r => Tlog(r)["publicKey"]!.AsObject().Remove("rawBytes"), "publicKey.rawBytes is missing"),
        ["tlog keyDetails"] = (r => Tlog(r)["publicKey"]!.AsObject().Remove("keyDetails"), "publicKey.keyDetails is missing"),
        ["tlog unknown keyDetails"] = (r => Tlog(r)["publicKey"]!["keyDetails"] = "PKIX_FROBNICATE_1024", "keyDetails 'PKIX_FROBNICATE_1024' is unknown"),
        ["tlog unspecified keyDetails"] = (r => Tlog(r)["publicKey"]!["keyDetails"] = "PUBLIC_KEY_DETAILS_UNSPECIFIED", "is unknown"),
        ["tlog keyDetails of another key"] = (r => Tlog(r)["publicKey"]!["keyDetails"] = "PKIX_ED25519", "is a EC P-256 key, but keyDetails PKIX_ED25519 requires Ed25519"),
        ["tlog unsupported keyDetails"] = (r => Tlog(r)["publicKey"]!["keyDetails"] = "PKIX_RSA_PSS_2048_SHA256", "PKIX_RSA_PSS_2048_SHA256 is not supported"),
        ["tlog baseUrl"] = (r => Tlog(r).Remove("baseUrl"), ".baseUrl is missing"),
        ["tlog hashAlgorithm"] = (r => Tlog(r).Remove("hashAlgorithm"), ".hashAlgorithm is missing"),
        ["tlog end before start"] = (r => Tlog(r)["publicKey"]!["validFor"]!["end"] = "2020-01-01T00:00:00Z", "ends (2020-01-01T00:00:00.0000000+00:00) before it starts"),
        ["ctlog validFor.start"] = (r => At(r, "ctlogs", 0)["publicKey"]!["validFor"]!.AsObject().Remove("start"), "ctlogs[0].publicKey.validFor.start is missing"),
        ["ctlog logId"] = (r => At(r, "ctlogs", 0).Remove("logId"), "ctlogs[0].logId is missing"),
        ["ctlog publicKey"] = (r => At(r, "ctlogs", 0).Remove("publicKey"), "ctlogs[0].publicKey is missing"),
        ["CA certChain"] = (r => At(r, "certificateAuthorities", 0).Remove("certChain"), "certificateAuthorities[0].certChain is missing"),
        ["CA empty certChain"] = (r => At(r, "certificateAuthorities", 0)["certChain"]!["certificates"] = new JsonArray(), "certificateAuthorities[0].certChain has no certificates"),
        ["CA not a certificate"] = (r => At(r, "certificateAuthorities", 0)["certChain"]!["certificates"]![0]!["rawBytes"] = "AAECAw==", "certificates[0].rawBytes is not a DER X.509 certificate"),
        ["CA validFor"] = (r => At(r, "certificateAuthorities", 0).Remove("validFor"), "certificateAuthorities[0].validFor is missing"),
        ["CA validFor.start"] = (r => At(r, "certificateAuthorities", 0)["validFor"]!.AsObject().Remove("start"), "certificateAuthorities[0].validFor.start is missing"),
        ["TSA validFor.start"] = (r => At(r, "timestampAuthorities", 0)["validFor"]!.AsObject().Remove("start"), "timestampAuthorities[0].validFor.start is missing"),
        ["TSA certChain"] = (r => At(r, "timestampAuthorities", 0).Remove("certChain"), "timestampAuthorities[0].certChain is missing"),
        ["mediaType"] = (r => r.Remove("mediaType"), "trustedRoot.mediaType is missing"),
        ["unknown mediaType"] = (r => r["mediaType"] = "application/vnd.dev.sigstore.trustedroot.v9+json", "is not a trusted-root media type"),
    };

    private static IEnumerable<string> Rows() => Breaks.Keys;

    [Test]
    public void TheUnbrokenRootVerifiesTheCase()
    {
        var dir = TestServices.RequireShared(Case);
        var (code, stdout, stderr) = Cli(dir, Root());
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stdout, Does.StartWith("OK"));
    }

    [TestCaseSource(nameof(Rows))]
    public void AnIncompleteEntryIsRefusedNamingTheField(string row)
    {
        var root = Root();
        var (breakIt, names) = Breaks[row];
        breakIt(root);
        var ex = Assert.Throws<CheckupException>(() => TrustedRoot.Parse(root.ToJsonString()));
        Assert.That(ex!.Code, Is.EqualTo(SigstoreCodes.TrustedRootMalformed));
        Assert.That(ex.Message, Does.Contain(names));
    }

    [Test]
    public void TheCommandLineRefusesARootWhoseLogKeyHasNoStart()
    {
        var dir = TestServices.RequireShared(Case);
        var root = Root();
        Tlog(root)["publicKey"]!["validFor"]!.AsObject().Remove("start");
        var (code, _, stderr) = Cli(dir, root);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.StartWith(SigstoreCodes.TrustedRootMalformed + ":").And.Contain("validFor.start is missing"));
    }

    [Test]
    public void AllProblemsAreReportedAtOnce()
    {
        var root = Root();
        Tlog(root).Remove("logId");
        At(root, "certificateAuthorities", 0).Remove("validFor");
        var ex = Assert.Throws<CheckupException>(() => TrustedRoot.Parse(root.ToJsonString()));
        Assert.That(ex!.Message, Does.Contain("2 problem(s)").And.Contain(".logId is missing").And.Contain("certificateAuthorities[0].validFor is missing"));
    }

    [Test]
    public void EveryShippedRootIsComplete()
    {
        var shared = TestServices.RequireShared("vectors/sigstore-conformance");
        var roots = Directory.EnumerateFiles(shared, "*trusted_root.json", SearchOption.AllDirectories).ToList();
        Assert.That(roots, Has.Count.GreaterThan(2));
        foreach (var f in roots) Assert.DoesNotThrow(() => TrustedRoot.Parse(File.ReadAllText(f)), f);
    }

    [Test]
    public void For_a_pipeline_an_incomplete_root_is_the_operators_configuration_error_not_a_finding_about_the_delivery()
    {
        var root = Root();
        At(root, "timestampAuthorities", 0)["validFor"]!.AsObject().Remove("start");
        var tmp = Directory.CreateTempSubdirectory("trust-root-");
        try
        {
            var file = Path.Combine(tmp.FullName, "trusted_root.json");
            File.WriteAllText(file, root.ToJsonString());
            var ex = Assert.Throws<Pipeline.Engine.PipelineException>(() => Pipeline.Engine.Trust.SigstoreTrustRoots.Load(file));
            Assert.That(ex!.Code, Is.EqualTo("CFG-SIGSTORE-ROOT"));
            Assert.That(ex.Message, Does.Contain(file).And.Contain("timestampAuthorities[0].validFor.start is missing"));
            Assert.That(Pipeline.Engine.Trust.SigstoreTrustRoots.Load(Path.Combine(TestServices.RequireShared(Case), "trusted_root.json")).Tlogs, Is.Not.Empty);
        }
        finally { tmp.Delete(true); }
    }

    private static (int Code, string Out, string Err) Cli(string caseDir, JsonObject root)
    {
        var tmp = Directory.CreateTempSubdirectory("trust-root-");
        try
        {
            var rootFile = Path.Combine(tmp.FullName, "trusted_root.json");
            File.WriteAllText(rootFile, root.ToJsonString());
            var o = new StringWriter();
            var e = new StringWriter();
            var code = VerifyBundleCommand.Run(["--bundle", Path.Combine(caseDir, "bundle.sigstore.json"),
                "--certificate-identity", SigstoreConformanceTests.DefaultIdentity, "--certificate-oidc-issuer", SigstoreConformanceTests.DefaultIssuer,
                "--trusted-root", rootFile, Path.Combine(caseDir, "..", "a.txt")], o, e);
            return (code, o.ToString(), e.ToString());
        }
        finally { tmp.Delete(true); }
    }
}
