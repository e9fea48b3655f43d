using System.Diagnostics;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Sigstore;

/// <summary>
/// Fresh bundles from shared/tools/sigstore-mock (mock Fulcio/CT/Rekor/TSA, generated at run time):
/// copies the tool to a temp folder, runs `npm install`, `node gen.js`, `node layout.js`, then
/// verifies every generated case in file and digest mode. Needs node + npm and the npm registry.
/// </summary>
[TestFixture]
[Category("Integration")]
public class SigstoreMockVectorTests
{
    private static readonly Dictionary<string, string> ExpectedCodes = new()
    {
        ["gen-bad-checkpoint-sig_fail"] = SigstoreCodes.CheckpointSignature,
        ["gen-bad-set_fail"] = SigstoreCodes.Set,
        ["gen-bad-signature_fail"] = SigstoreCodes.MessageSignature,
        ["gen-bad-tsa_fail"] = SigstoreCodes.Tsa,
        ["gen-dsse-payload-tampered_fail"] = SigstoreCodes.DsseSignature,
        ["gen-untrusted-ca_fail"] = SigstoreCodes.CertChain,
        ["gen-wrong-artifact_fail"] = SigstoreCodes.ArtifactMismatch,
        ["gen-wrong-identity_fail"] = SigstoreCodes.Identity,
    };

    private string? _work;

    [OneTimeTearDown]
    public void Cleanup()
    {
        if (_work is not null && Directory.Exists(_work)) Directory.Delete(_work, recursive: true);
    }

    [Test]
    public void GeneratedBundlesVerifyOrFailForTheRightReason()
    {
        var tool = TestServices.RequireShared("tools/sigstore-mock");
        _work = Path.Combine(Path.GetTempPath(), "sigstore-mock-" + Guid.NewGuid().ToString("N"));
        CopyDir(tool, _work);
        Step("npm", "install --no-audit --no-fund", TimeSpan.FromMinutes(5));
        Step("node", "gen.js out", TimeSpan.FromMinutes(2));
        Step("node", "layout.js out dest", TimeSpan.FromMinutes(1));

        var cases = Directory.GetDirectories(Path.Combine(_work, "dest", "bundle-verify")).Order(StringComparer.Ordinal).ToList();
        Assert.That(cases, Has.Count.GreaterThanOrEqualTo(4));
        Assert.Multiple(() =>
        {
            foreach (var dir in cases)
            {
                foreach (var digest in new[] { false, true })
                {
                    try
                    {
                        ConformanceCaseRunner.AssertCase(dir, Path.Combine(_work, "out", "artifact"), Path.Combine(_work, "out", "trusted_root.json"), digest, ExpectedCodes);
                    }
                    catch (Pipeline.Checkup.CheckupException ex)
                    {
                        Assert.Fail($"{Path.GetFileName(dir)} ({(digest ? "digest" : "file")}): {ex.Code}: {ex.Message}");
                    }
                }
            }
        });
    }

    private void Step(string exe, string args, TimeSpan timeout)
    {
        ProcessStartInfo psi = new(exe, args) { WorkingDirectory = _work, RedirectStandardOutput = true, RedirectStandardError = true };
        Process? p;
        try { p = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception) { p = null; }
        if (p is null)
        {
            Unavailable($"{exe} is not installed; install Node.js + npm to run the generated Sigstore vectors");
            return;
        }
        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                Unavailable($"`{exe} {args}` did not finish within {timeout}");
            }
            if (p.ExitCode != 0) Unavailable($"`{exe} {args}` failed (exit {p.ExitCode}): {stderr.Result[..Math.Min(500, stderr.Result.Length)]}");
        }
    }

    private static void Unavailable(string message) => throw TestServices.Unavailable(message);

    private static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
        foreach (var d in Directory.GetDirectories(from))
        {
            if (Path.GetFileName(d) == "node_modules") continue;
            CopyDir(d, Path.Combine(to, Path.GetFileName(d)));
        }
    }
}
