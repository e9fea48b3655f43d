using Pipeline.Checkup;
using Pipeline.Checkup.Checksums;

namespace Pipeline.Tests.Checkup.Checksums;

public class ChecksumManifestTests
{
    private const string H1 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    private const string H2 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    private static readonly string H512 = new('a', 128);

    [Test]
    public void Parses_text_and_binary_mode_lines()
    {
        var m = ChecksumManifest.Parse("SHA256SUMS", $"{H1}  bin/app\n{H2.ToUpperInvariant()} *lib/x.so\n");
        Assert.That(m.Algorithm, Is.EqualTo("SHA256"));
        Assert.That(m.Entries.Select(e => (e.Path, e.Digest, e.BinaryMode, e.LineNumber)), Is.EqualTo(new[]
        {
            ("bin/app", H1, false, 1),
            ("lib/x.so", H2, true, 2),
        }));
        Assert.That(m.ManifestDigest, Does.Match("^sha256:[0-9a-f]{64}$"));
    }

    [Test]
    public void Name_keeps_spaces_and_leading_dot_slash_is_removed()
    {
        var m = ChecksumManifest.Parse("SHA256SUMS", $"{H1}   two  spaces \n{H2}  ./a/b\n");
        Assert.That(m.Entries.Select(e => e.Path), Is.EqualTo(new[] { " two  spaces ", "a/b" }));
    }

    [Test]
    public void Escaped_line_decodes_backslash_n()
    {
        var m = ChecksumManifest.Parse("SHA256SUMS", $"\\{H1}  new\\nline\n");
        Assert.That(m.Entries[0].Path, Is.EqualTo("new\nline"));
    }

    [Test]
    public void Algorithm_from_hex_length_when_name_says_nothing()
    {
        Assert.That(ChecksumManifest.Parse("checksums.txt", $"{H512}  a\n").Algorithm, Is.EqualTo("SHA512"));
        Assert.That(ChecksumManifest.Parse("checksums.txt", $"{H1}  a\n").Algorithm, Is.EqualTo("SHA256"));
        Assert.That(ChecksumManifest.Parse("dir/SHA512SUMS", $"{H512}  a\n").Algorithm, Is.EqualTo("SHA512"));
    }

    [Test]
    public void Crlf_comments_and_blank_lines_are_tolerated()
    {
        var m = ChecksumManifest.Parse("SHA256SUMS", $"# generated\r\n\r\n{H1}  a\r\n");
        Assert.That(m.Entries.Single().Path, Is.EqualTo("a"));
        Assert.That(m.Entries.Single().LineNumber, Is.EqualTo(3));
    }

    [Test]
    public void Manifest_digest_is_sha256_of_the_bytes()
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes($"{H1}  a\n");
        var m = ChecksumManifest.Parse("SHA256SUMS", bytes);
        Assert.That(m.ManifestDigest, Is.EqualTo("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes))));
        Assert.That(ChecksumManifest.Parse("SHA256SUMS", $"{H1}  a\n").ManifestDigest, Is.EqualTo(m.ManifestDigest));
    }

    [TestCase("{H1} a", ChecksumErrors.MalformedLine, 2, TestName = "single space")]
    [TestCase("{H1}", ChecksumErrors.MalformedLine, 2, TestName = "no name")]
    [TestCase("SHA256 (a) = {H1}", ChecksumErrors.MalformedLine, 2, TestName = "BSD tag format")]
    [TestCase("\\{H1}  bad\\tescape", ChecksumErrors.MalformedLine, 2, TestName = "unknown escape")]
    [TestCase("\\{H1}  trailing\\", ChecksumErrors.MalformedLine, 2, TestName = "dangling escape")]
    [TestCase("zz{H1short}  a", ChecksumErrors.BadDigest, 2, TestName = "non hex digest")]
    [TestCase("{H1}00  a", ChecksumErrors.BadDigest, 2, TestName = "wrong digest length")]
    [TestCase("{H512}  a", ChecksumErrors.BadDigest, 2, TestName = "sha512 digest in SHA256SUMS")]
    [TestCase("{H1}  first", ChecksumErrors.DuplicatePath, 2, TestName = "duplicate path")]
    [TestCase("{H1}  ./first", ChecksumErrors.DuplicatePath, 2, TestName = "duplicate after dot slash")]
    [TestCase("{H1}  /etc/passwd", ChecksumErrors.AbsolutePath, 2, TestName = "absolute path")]
    [TestCase("{H1}  C:evil", ChecksumErrors.AbsolutePath, 2, TestName = "drive letter")]
    [TestCase("{H1}  a/../../x", ChecksumErrors.ParentSegment, 2, TestName = "dot dot segment")]
    [TestCase("{H1}  ..", ChecksumErrors.ParentSegment, 2, TestName = "dot dot only")]
    [TestCase("{H1}  a/./b", ChecksumErrors.ParentSegment, 2, TestName = "dot segment")]
    [TestCase("{H1}  a\\b", ChecksumErrors.BackslashPath, 2, TestName = "backslash separator")]
    [TestCase("\\{H1}  a\\\\b", ChecksumErrors.BackslashPath, 2, TestName = "escaped backslash")]
    [TestCase("{H1}  a//b", ChecksumErrors.EmptyName, 2, TestName = "empty segment")]
    [TestCase("{H1}  dir/", ChecksumErrors.EmptyName, 2, TestName = "trailing slash")]
    [TestCase("{H1}  a\0b", ChecksumErrors.ControlCharacter, 2, TestName = "NUL in name")]
    [TestCase("{H1}  a\u001bb", ChecksumErrors.ControlCharacter, 2, TestName = "escape char in name")]
    public void Rejects_bad_line_with_code_and_line_number(string line, string code, int lineNo)
    {
        var text = $"{H2}  first\n" + line.Replace("{H1short}", H1[2..]).Replace("{H1}", H1).Replace("{H512}", H512) + "\n";
        var ex = Assert.Throws<CheckupException>(() => ChecksumManifest.Parse("SHA256SUMS", text));
        Assert.That(ex!.Code, Is.EqualTo(code));
        Assert.That(ex.Message, Does.Contain($"SHA256SUMS line {lineNo}:"));
    }

    [Test]
    public void Empty_name_after_two_spaces_is_rejected()
    {
        var ex = Assert.Throws<CheckupException>(() => ChecksumManifest.Parse("SHA256SUMS", $"{H1}  \n"));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.EmptyName));
        Assert.That(ex.Message, Does.Contain("line 1"));
    }

    [Test]
    public void Mixed_algorithms_by_length_are_rejected()
    {
        var ex = Assert.Throws<CheckupException>(() => ChecksumManifest.Parse("sums", $"{H1}  a\n{H512}  b\n"));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.BadDigest));
        Assert.That(ex.Message, Does.Contain("line 2").And.Contain("SHA256"));
    }

    [Test]
    public void Empty_manifest_is_rejected()
    {
        var ex = Assert.Throws<CheckupException>(() => ChecksumManifest.Parse("SHA256SUMS", "# nothing\n\n"));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.EmptyManifest));
    }

    [Test]
    public void Invalid_utf8_bytes_are_rejected()
    {
        var ex = Assert.Throws<CheckupException>(() => ChecksumManifest.Parse("SHA256SUMS", [0x61, 0xff, 0x0a]));
        Assert.That(ex!.Code, Is.EqualTo(ChecksumErrors.MalformedLine));
        Assert.That(ex.Message, Does.Contain("UTF-8"));
    }
}
