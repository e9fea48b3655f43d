using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Cli;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Sigstore;

[TestFixture]
public class VerifyBundleCommandTests
{
    private const string Rel = "vectors/sigstore-conformance/bundle-verify";

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var code = VerifyBundleCommand.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static string[] Args(string caseName, string artifact)
    {
        var root = TestServices.RequireShared(Rel);
        return ["--bundle", Path.Combine(root, caseName, "bundle.sigstore.json"),
            "--certificate-identity", SigstoreConformanceTests.DefaultIdentity,
            "--certificate-oidc-issuer", SigstoreConformanceTests.DefaultIssuer,
            "--trusted-root", Path.Combine(root, "..", "production_trusted_root.json"), artifact];
    }

    [Test]
    public void HappyPathExitsZeroAndPrintsEvidence()
    {
        var root = TestServices.RequireShared(Rel);
        var (code, stdout, _) = Run(Args("happy-path-v0.3", Path.Combine(root, "a.txt")));
        Assert.That(code, Is.EqualTo(0));
        Assert.That(stdout, Does.Contain("OK").And.Contain("tlog-inclusion").And.Contain(SigstoreConformanceTests.DefaultIdentity));
    }

    [Test]
    public void VerificationFailureExitsOneWithCode()
    {
        var root = TestServices.RequireShared(Rel);
        var (code, _, stderr) = Run(Args("set-invalid-signature_fail", "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(root, "a.txt"))))));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(stderr, Does.StartWith(SigstoreCodes.Set + ":"));
    }

    [TestCase(new string[0], "--bundle and the artifact")]
    [TestCase(new[] { "--bundle" }, "needs a value")]
    [TestCase(new[] { "--bundle", "b.json", "--frob", "x", "a" }, "unknown option --frob")]
    [TestCase(new[] { "--bundle", "b.json", "a" }, "--certificate-identity and --certificate-oidc-issuer, or --key")]
    [TestCase(new[] { "--bundle", "b.json", "--key", "k.pem", "--certificate-identity", "x", "a" }, "cannot be combined")]
    [TestCase(new[] { "--bundle", "b.json", "--key", "k.pem", "a", "b" }, "unexpected argument b")]
    public void UsageErrorsExitTwo(string[] args, string reason)
    {
        var (code, _, stderr) = Run(args);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain(reason).And.Contain("usage:"));
    }

    [Test]
    public void BadDigestIsAUsageError()
    {
        var a = Args("happy-path-v0.3", "sha256:nothex");
        var (code, _, stderr) = Run(a);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr, Does.Contain("sha256:<64 hex digits>"));
    }
}
