using System.Text;
using LibGit2Sharp;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Git;

namespace Pipeline.Tests.Checkup.Signatures.Git;

public class GitTagObjectTests
{
    private GitCli _cli = null!;
    private string _sshKey = null!;

    [OneTimeSetUp]
    public void OneTimeSetUp()
    {
        _cli = new GitCli();
        _cli.InitRepoWithCommit();
        _sshKey = _cli.SshKey("ed25519", "tagkey");
    }

    [OneTimeTearDown]
    public void OneTimeTearDown() => _cli.Dispose();

    private void SshTag(string name, string messageFile, params string[] extra) =>
        _cli.Git(["-c", "gpg.format=ssh", "-c", $"user.signingkey={_sshKey}.pub", "tag", "-s", .. extra, "-F", messageFile, name]);

    private string MessageFile(string text)
    {
        var path = Path.Combine(_cli.Dir, "msg-" + Guid.NewGuid().ToString("N"));
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Rebuilds the tag from LibGit2Sharp's fields, as the Engine does, and compares with git's own bytes and id.</summary>
    private (byte[] Rebuilt, byte[] Raw, string Id) RoundTrip(string tagName)
    {
        var raw = _cli.GitBytes(null, "cat-file", "tag", tagName);
        var id = _cli.Git("rev-parse", tagName);
        using var repo = new Repository(_cli.Repo);
        var a = repo.Tags[tagName].Annotation;
        var tagger = a.Tagger is null ? null : GitTagObject.FormatIdentity(a.Tagger.Name, a.Tagger.Email, a.Tagger.When);
        var rebuilt = GitTagObject.Build(a.Target.Sha, a.Target switch { Commit => "commit", Tree => "tree", Blob => "blob", _ => "tag" }, a.Name, tagger, a.Message);
        return (rebuilt, raw, id);
    }

    [TestCase("one line", TestName = "single line")]
    [TestCase("Release 1.0\n\nMulti-line body\n  indented\n\nlast paragraph", TestName = "multi-line")]
    [TestCase("Ünïcødé release ✓", TestName = "unicode")]
    public void Ssh_signed_tag_round_trips_and_splits(string message)
    {
        var tag = "ssh-" + Guid.NewGuid().ToString("N")[..8];
        SshTag(tag, MessageFile(message));
        var (rebuilt, raw, id) = RoundTrip(tag);
        Assert.That(rebuilt, Is.EqualTo(raw));
        Assert.That(GitTagObject.ComputeId(rebuilt), Is.EqualTo(id));
        Assert.DoesNotThrow(() => GitTagObject.Verify(rebuilt, id));

        var split = GitTagObject.Split(rebuilt);
        Assert.That(split.Kind, Is.EqualTo(GitSignatureKind.Ssh));
        Assert.That(Encoding.UTF8.GetString(split.Payload), Does.EndWith(message.TrimEnd('\n') + "\n"));
        Assert.That(Encoding.ASCII.GetString(split.Signature), Does.StartWith("-----BEGIN SSH SIGNATURE-----\n").And.EndWith("-----END SSH SIGNATURE-----\n"));
        Assert.That(split.Payload.Concat(split.Signature), Is.EqualTo(raw));
    }

    [Test]
    public void Verbatim_messages_with_extra_trailing_newlines_round_trip()
    {
        var tag = "verbatim-" + Guid.NewGuid().ToString("N")[..8];
        _cli.Git("tag", "-a", "--cleanup=verbatim", "-F", MessageFile("keep\n\n\ntrailing\n\n\n"), tag);
        var (rebuilt, raw, id) = RoundTrip(tag);
        Assert.That(Encoding.UTF8.GetString(raw), Does.EndWith("trailing\n\n\n"));
        Assert.That(rebuilt, Is.EqualTo(raw));
        Assert.That(GitTagObject.ComputeId(rebuilt), Is.EqualTo(id));
        Assert.That(GitTagObject.Split(rebuilt).Kind, Is.EqualTo(GitSignatureKind.None));
    }

    [Test]
    public void Message_without_trailing_newline_round_trips()
    {
        var head = _cli.Git("rev-parse", "HEAD");
        var obj = $"object {head}\ntype commit\ntag nonl\ntagger Supplier Release <release@supplier.example> 1700000000 -0500\n\nno newline at end";
        var id = Encoding.ASCII.GetString(_cli.GitBytes(Encoding.UTF8.GetBytes(obj), "mktag")).Trim();
        _cli.Git("update-ref", "refs/tags/nonl", id);
        var (rebuilt, raw, gitId) = RoundTrip("nonl");
        Assert.That(gitId, Is.EqualTo(id));
        Assert.That(raw, Is.EqualTo(Encoding.UTF8.GetBytes(obj)));
        Assert.That(rebuilt, Is.EqualTo(raw));
        Assert.That(GitTagObject.ComputeId(rebuilt), Is.EqualTo(id));
    }

    [Test]
    public void Split_uses_the_last_signature_header_like_git()
    {
        var tag = "decoy-" + Guid.NewGuid().ToString("N")[..8];
        SshTag(tag, MessageFile("Release\n\n-----BEGIN SSH SIGNATURE-----\nnot really\n-----END SSH SIGNATURE-----\n"), "--cleanup=verbatim");
        var (rebuilt, raw, id) = RoundTrip(tag);
        GitTagObject.Verify(rebuilt, id);
        var split = GitTagObject.Split(rebuilt);
        Assert.That(Encoding.UTF8.GetString(split.Payload), Does.Contain("not really"));
        Assert.That(Encoding.ASCII.GetString(split.Signature), Does.Not.Contain("not really"));
        // git verify-tag agrees that the payload including the decoy is what was signed
        var allowed = Path.Combine(_cli.Dir, "allowed_decoy");
        File.WriteAllText(allowed, "release@supplier.example " + File.ReadAllText(_sshKey + ".pub"));
        var r = _cli.TryRun("git", null, "-c", $"gpg.ssh.allowedSignersFile={allowed}", "verify-tag", tag);
        Assert.That(r.Exit, Is.Zero, r.Stderr);
        Assert.That(raw, Is.EqualTo(rebuilt));
    }

    [Test]
    public void OpenPgp_signed_tag_round_trips_and_splits()
    {
        var gpg = _cli.TryRun("gpg", null, "--batch", "--passphrase", "", "--quick-gen-key", "Supplier Release <release@supplier.example>", "ed25519", "sign", "never");
        if (gpg.Exit != 0) Assert.Fail("gpg key generation failed: " + gpg.Stderr);
        var tag = "pgp-" + Guid.NewGuid().ToString("N")[..8];
        _cli.Git("-c", "user.signingkey=release@supplier.example", "tag", "-s", "-m", "PGP release\n\nbody", tag);
        var (rebuilt, raw, id) = RoundTrip(tag);
        Assert.That(rebuilt, Is.EqualTo(raw));
        GitTagObject.Verify(rebuilt, id);
        var split = GitTagObject.Split(rebuilt);
        Assert.That(split.Kind, Is.EqualTo(GitSignatureKind.OpenPgp));
        Assert.That(Encoding.ASCII.GetString(split.Signature), Does.StartWith("-----BEGIN PGP SIGNATURE-----\n"));
    }

    [Test]
    public void Tampered_field_fails_verify_with_id_mismatch()
    {
        var tag = "tamper-" + Guid.NewGuid().ToString("N")[..8];
        SshTag(tag, MessageFile("genuine"));
        var (rebuilt, _, id) = RoundTrip(tag);
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(rebuilt).Replace("genuine", "genuinE", StringComparison.Ordinal));
        var ex = Assert.Throws<CheckupException>(() => GitTagObject.Verify(tampered, id));
        Assert.That(ex!.Code, Is.EqualTo(GitTagErrors.IdMismatch));
        Assert.That(ex.Message, Does.Contain(id).And.Contain(GitTagObject.ComputeId(tampered)));
    }

    [Test]
    public void Verify_rejects_an_id_that_is_not_an_object_id()
    {
        var ex = Assert.Throws<CheckupException>(() => GitTagObject.Verify([1, 2, 3], "abc"));
        Assert.That(ex!.Code, Is.EqualTo(GitTagErrors.IdMismatch));
    }

    [Test]
    public void Compute_id_matches_git_hash_object()
    {
        var bytes = Encoding.UTF8.GetBytes("anything\n");
        var gitId = Encoding.ASCII.GetString(_cli.GitBytes(bytes, "hash-object", "-t", "tag", "--literally", "--stdin")).Trim();
        Assert.That(GitTagObject.ComputeId(bytes), Is.EqualTo(gitId));
    }

    private const string Head = "object 0123456789abcdef0123456789abcdef01234567\ntype commit\ntag v1\ntagger A <a@b> 1 +0000\n\n";

    [TestCase("garbage", GitTagErrors.Malformed, TestName = "no blank line")]
    [TestCase("tag v1\nobject 0123456789abcdef0123456789abcdef01234567\ntype commit\n\nmsg", GitTagErrors.Malformed, TestName = "headers out of order")]
    [TestCase("object 0123\ntype commit\ntag v1\n\nmsg", GitTagErrors.Malformed, TestName = "short object id")]
    [TestCase("object 0123456789abcdef0123456789abcdef01234567\ntype weird\ntag v1\n\nmsg", GitTagErrors.Malformed, TestName = "bad type")]
    [TestCase("object 0123456789abcdef0123456789abcdef01234567\ntype commit\ntag v1\ngpgsig x\n\nmsg", GitTagErrors.Malformed, TestName = "unknown header")]
    [TestCase(Head + "m\n-----BEGIN SSH SIGNATURE-----\nAAAA\n", GitTagErrors.MalformedSignature, TestName = "unterminated ssh block")]
    [TestCase(Head + "m\n-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----\ntrailer\n", GitTagErrors.MalformedSignature, TestName = "text after block")]
    [TestCase(Head + "m\n-----BEGIN SIGNED MESSAGE-----\nAAAA\n-----END SIGNED MESSAGE-----\n", GitTagErrors.UnsupportedSignature, TestName = "x509 signature")]
    public void Split_rejects_garbage(string raw, string code)
    {
        var ex = Assert.Throws<CheckupException>(() => GitTagObject.Split(Encoding.UTF8.GetBytes(raw)));
        Assert.That(ex!.Code, Is.EqualTo(code));
    }

    [Test]
    public void Signature_header_not_at_line_start_is_message_text()
    {
        var split = GitTagObject.Split(Encoding.UTF8.GetBytes(Head + "see -----BEGIN SSH SIGNATURE----- here\n"));
        Assert.That(split.Kind, Is.EqualTo(GitSignatureKind.None));
        Assert.That(split.Signature, Is.Empty);
    }

    [Test]
    public void Build_rejects_newline_in_header_fields()
    {
        var ex = Assert.Throws<CheckupException>(() => GitTagObject.Build("abc", "commit", "v1\ntype tree", null, "m"));
        Assert.That(ex!.Code, Is.EqualTo(GitTagErrors.Malformed));
        Assert.That(ex.Message, Does.Contain("'tag'"));
    }
}
