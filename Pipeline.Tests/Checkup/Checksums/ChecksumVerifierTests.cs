using System.Diagnostics;
using System.Security.Cryptography;
using Pipeline.Checkup;
using Pipeline.Checkup.Checksums;

namespace Pipeline.Tests.Checkup.Checksums;

public class ChecksumVerifierTests
{
    private string _root = null!;

    [SetUp]
    public async Task SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "chk-sum-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(_root, "bin"));
        Directory.CreateDirectory(Path.Combine(_root, "lib", "deep"));
        File.WriteAllText(Path.Combine(_root, "bin", "app"), "hello app\n");
        File.WriteAllBytes(Path.Combine(_root, "lib", "deep", "data.bin"), RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17));
        File.WriteAllText(Path.Combine(_root, "README name with spaces"), "");
        File.WriteAllText(Path.Combine(_root, "B-upper"), "B");
    }

    [TearDown]
    public async Task TearDown() => Directory.Delete(_root, true);

    /// <summary>The manifest as the real coreutils tool writes it (independent of our parser).</summary>
    private string Coreutils(string tool, string manifestName)
    {
        var files = Directory.EnumerateFiles(_root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(_root, f)).Where(f => f != manifestName).OrderBy(f => f, StringComparer.Ordinal);
        var psi = new ProcessStartInfo(tool) { WorkingDirectory = _root, RedirectStandardOutput = true };
        foreach (var f in files) psi.ArgumentList.Add(f);
        using var p = Process.Start(psi)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, tool + " failed");
        File.WriteAllText(Path.Combine(_root, manifestName), text);
        return text;
    }

    private static string Sha256(string path) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));

    [Test]
    public async Task Verifies_sha256sum_output_and_reports_every_file_sorted()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        var report = await ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None);
        Assert.That(report.Algorithm, Is.EqualTo("SHA256"));
        Assert.That(report.ManifestDigest, Is.EqualTo("sha256:" + Sha256(Path.Combine(_root, "SHA256SUMS"))));
        Assert.That(report.Files.Select(f => f.Path), Is.EqualTo(new[] { "B-upper", "README name with spaces", "bin/app", "lib/deep/data.bin" }));
        var data = report.Files.Single(f => f.Path == "lib/deep/data.bin");
        Assert.That(data.Size, Is.EqualTo(3 * 1024 * 1024 + 17));
        Assert.That(data.Sha256, Is.EqualTo(Sha256(Path.Combine(_root, "lib", "deep", "data.bin"))));
    }

    [Test]
    public async Task Sha512_manifest_still_reports_sha256_of_each_file()
    {
        var text = Coreutils("sha512sum", "SHA512SUMS");
        var report = await ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA512SUMS", text), null, CancellationToken.None);
        Assert.That(report.Algorithm, Is.EqualTo("SHA512"));
        Assert.That(report.Files.Single(f => f.Path == "bin/app").Sha256, Is.EqualTo(Sha256(Path.Combine(_root, "bin", "app"))));
    }

    [Test]
    public async Task Git_directory_and_callback_exclusions_are_skipped()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        Directory.CreateDirectory(Path.Combine(_root, ".git", "objects"));
        File.WriteAllText(Path.Combine(_root, ".git", "HEAD"), "ref: x");
        File.WriteAllText(Path.Combine(_root, "SHA256SUMS.sig"), "sig");
        var report = await ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text),
            p => p == "SHA256SUMS.sig", CancellationToken.None);
        Assert.That(report.Files, Has.Count.EqualTo(4));
    }

    [Test]
    public async Task Nested_git_directory_is_not_excluded()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        Directory.CreateDirectory(Path.Combine(_root, "lib", ".git"));
        File.WriteAllText(Path.Combine(_root, "lib", ".git", "config"), "x");
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.Extra));
        Assert.That(ex.Message, Does.Contain("lib/.git/config"));
    }

    [Test]
    public async Task Mismatch_missing_and_extra_are_all_reported()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        File.AppendAllText(Path.Combine(_root, "bin", "app"), "tampered");
        File.Delete(Path.Combine(_root, "B-upper"));
        File.WriteAllText(Path.Combine(_root, "bin", "dropper"), "extra");
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.Missing), "first kind in reporting order");
        Assert.That(ex.Problems.Select(p => (p.Kind, p.Path)), Is.EqualTo(new[]
        {
            (ChecksumProblemKind.Missing, "B-upper"),
            (ChecksumProblemKind.Extra, "bin/dropper"),
            (ChecksumProblemKind.Mismatch, "bin/app"),
        }));
        Assert.That(ex.Message, Does.Contain("3 problem(s)").And.Contain("CHK-SUM-025 Mismatch 'bin/app'").And.Contain("line 3"));
    }

    [Test]
    public async Task Only_a_mismatch_gives_the_mismatch_code()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        var data = Path.Combine(_root, "lib", "deep", "data.bin");
        var bytes = File.ReadAllBytes(data);
        bytes[^1] ^= 1;
        File.WriteAllBytes(data, bytes);
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.Mismatch));
        Assert.That(ex.Problems.Single().Path, Is.EqualTo("lib/deep/data.bin"));
    }

    [Test]
    public async Task Symlink_is_rejected_even_when_listed_with_the_right_digest()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "bin", "link"), "app");
        var text = Coreutils("sha256sum", "SHA256SUMS"); // sha256sum follows the link, so it is listed
        Assert.That(text, Does.Contain("bin/link"));
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.Symlink));
        Assert.That(ex.Problems.Select(p => p.Path), Is.EqualTo(new[] { "bin/link" }), "not also reported missing");
    }

    [Test]
    public async Task Symlinked_directory_is_rejected_not_followed()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        Directory.CreateSymbolicLink(Path.Combine(_root, "etc"), "/etc");
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.Symlink));
        Assert.That(ex.Problems.Single().Path, Is.EqualTo("etc"));
    }

    [Test]
    public async Task Fifo_is_rejected_without_blocking()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        using (var p = Process.Start("mkfifo", Path.Combine(_root, "bin", "pipe"))) p.WaitForExit();
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.NotRegularFile));
        Assert.That(ex.Problems.Single().Path, Is.EqualTo("bin/pipe"));
    }

    [Test]
    public async Task Listing_an_excluded_path_is_reported()
    {
        var h = new string('0', 64);
        var text = Coreutils("sha256sum", "SHA256SUMS") + $"{h}  .git/config\n{h}  SHA256SUMS\n";
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.ExcludedListed));
        Assert.That(ex.Problems.Select(p => p.Path), Is.EquivalentTo(new[] { ".git/config", "SHA256SUMS" }));
    }

    [Test]
    public async Task Many_problems_are_summarised_with_a_count()
    {
        var text = Coreutils("sha256sum", "SHA256SUMS");
        for (var i = 0; i < 25; i++) File.WriteAllText(Path.Combine(_root, $"extra{i:D2}"), "x");
        var ex = await Assert.ThrowsAsync<ChecksumVerificationException>(() =>
            ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None));
        Assert.That(ex!.Problems, Has.Count.EqualTo(25));
        Assert.That(ex.Message, Does.Contain("25 problem(s)").And.Contain("extra00").And.Contain("and 15 more").And.Not.Contain("extra24"));
    }

    [Test]
    public async Task Missing_root_is_reported()
    {
        var ex = await Assert.ThrowsAsync<CheckupException>(() => ChecksumVerifier.VerifyAsync(Path.Combine(_root, "nope"),
            ChecksumManifest.Parse("SHA256SUMS", new string('0', 64) + "  a\n"), null, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.RootUnreadable));
    }

    [Test]
    public async Task Name_with_newline_written_by_coreutils_round_trips()
    {
        File.WriteAllText(Path.Combine(_root, "odd\nname"), "odd");
        var text = Coreutils("sha256sum", "SHA256SUMS");
        Assert.That(text, Does.Contain("\\").And.Contain("odd\\nname"), "coreutils escapes the newline");
        var report = await ChecksumVerifier.VerifyAsync(_root, ChecksumManifest.Parse("SHA256SUMS", text), null, CancellationToken.None);
        Assert.That(report.Files.Select(f => f.Path), Does.Contain("odd\nname"));
    }
}
