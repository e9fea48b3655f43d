using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Checkup.Signatures.Ssh;

namespace Pipeline.Tests.Checkup.Signatures.Ssh;

/// <summary>
/// Real SSH-signed git tags: our verdict (GitTagObject split + SshSignatureVerifier) must equal
/// <c>git verify-tag</c>'s with the same allowed signers.
/// </summary>
public class GitSshTagDifferentialTests
{
    private GitCli _cli = null!;
    private readonly Dictionary<string, string> _keys = [];

    [OneTimeSetUp]
    public void OneTimeSetUp()
    {
        _cli = new GitCli();
        _cli.InitRepoWithCommit();
        foreach (var t in new[] { "ed25519", "ecdsa", "rsa" }) _keys[t] = _cli.SshKey(t, "tag-" + t);
        _keys["other"] = _cli.SshKey("ed25519", "tag-other");
    }

    [OneTimeTearDown]
    public void OneTimeTearDown() => _cli.Dispose();

    private SshPublicKey Pub(string k) => SshPublicKey.Parse(File.ReadAllText(_keys[k] + ".pub"));

    private string NewTag(string key, string message)
    {
        var name = $"v-{key}-{Guid.NewGuid():N}"[..20];
        _cli.Git("-c", "gpg.format=ssh", "-c", $"user.signingkey={_keys[key]}.pub", "tag", "-s", "-m", message, name);
        return name;
    }

    /// <summary>Writes a tag object as given (mktag) and points a ref at it; returns the tag name.</summary>
    private string RawTag(string rawObject)
    {
        var name = $"raw-{Guid.NewGuid():N}"[..16];
        rawObject = rawObject.Replace("tag PLACEHOLDER\n", $"tag {name}\n", StringComparison.Ordinal);
        var id = Encoding.ASCII.GetString(_cli.GitBytes(Encoding.UTF8.GetBytes(rawObject), "mktag")).Trim();
        _cli.Git("update-ref", "refs/tags/" + name, id);
        return name;
    }

    private bool GitAccepts(string tag, params string[] allowedKeys)
    {
        var allowed = Path.Combine(_cli.Dir, $"allowed-{Guid.NewGuid():N}");
        File.WriteAllLines(allowed, allowedKeys.Select(k => "release@supplier.example " + File.ReadAllText(_keys[k] + ".pub").Trim()));
        return _cli.TryRun("git", null, "-c", $"gpg.ssh.allowedSignersFile={allowed}", "verify-tag", tag).Exit == 0;
    }

    private (bool Accepted, string? Code) Ours(string tag, params string[] allowedKeys)
    {
        var raw = _cli.GitBytes(null, "cat-file", "tag", tag);
        var id = _cli.Git("rev-parse", tag);
        try
        {
            GitTagObject.Verify(raw, id);
            var split = GitTagObject.Split(raw);
            if (split.Kind != GitSignatureKind.Ssh) return (false, "not-ssh");
            var sig = SshSignature.Parse(Encoding.ASCII.GetString(split.Signature));
            SshSignatureVerifier.Verify(split.Payload, sig, "git", allowedKeys.Select(Pub).ToList());
            return (true, null);
        }
        catch (CheckupException e)
        {
            return (false, e.Code);
        }
    }

    private void AssertSameVerdict(string tag, string? expectedCode, params string[] allowedKeys)
    {
        var git = GitAccepts(tag, allowedKeys);
        var ours = Ours(tag, allowedKeys);
        Assert.That(ours.Accepted, Is.EqualTo(git), $"git verify-tag says {(git ? "good" : "bad")}, we say {ours}");
        Assert.That(ours.Code, Is.EqualTo(expectedCode));
    }

    [TestCase("ed25519")]
    [TestCase("ecdsa")]
    [TestCase("rsa")]
    public void Good_signature(string key) => AssertSameVerdict(NewTag(key, "Release 1.0\n\nNotes."), null, key, "other");

    [Test]
    public void Key_not_allowed() => AssertSameVerdict(NewTag("ed25519", "Release"), SshErrors.KeyNotAllowed, "other");

    private string SignedTagText(string key, out string payload, out string signature)
    {
        var raw = Encoding.UTF8.GetString(_cli.GitBytes(null, "cat-file", "tag", NewTag(key, "Genuine release")));
        var at = raw.IndexOf("-----BEGIN SSH SIGNATURE-----", StringComparison.Ordinal);
        payload = raw[..at];
        signature = raw[at..];
        return raw;
    }

    [Test]
    public void Tampered_message_with_original_signature()
    {
        SignedTagText("ed25519", out var payload, out var signature);
        var head = payload[..payload.IndexOf("\n\n", StringComparison.Ordinal)];
        var lines = head.Split('\n');
        var tampered = $"{lines[0]}\n{lines[1]}\ntag PLACEHOLDER\n{lines[3]}\n\nGenuine releasE\n{signature}";
        AssertSameVerdict(RawTag(tampered), SshErrors.SignatureInvalid, "ed25519");
    }

    [Test]
    public void Signature_made_for_another_namespace()
    {
        var head = _cli.Git("rev-parse", "HEAD");
        var payload = $"object {head}\ntype commit\ntag PLACEHOLDER\ntagger Supplier Release <release@supplier.example> 1700000000 +0000\n\nRelease\n";
        // The tag name is substituted before signing so the signed payload is exactly what git will check.
        var name = $"ns-{Guid.NewGuid():N}"[..16];
        payload = payload.Replace("PLACEHOLDER", name, StringComparison.Ordinal);
        var file = Path.Combine(_cli.Dir, name);
        File.WriteAllText(file, payload);
        _cli.Run("ssh-keygen", _cli.Dir, null, "-Y", "sign", "-n", "file", "-f", _keys["ed25519"], file);
        var id = Encoding.ASCII.GetString(_cli.GitBytes(Encoding.UTF8.GetBytes(payload + File.ReadAllText(file + ".sig")), "mktag")).Trim();
        _cli.Git("update-ref", "refs/tags/" + name, id);
        AssertSameVerdict(name, SshErrors.WrongNamespace, "ed25519");
    }

    [Test]
    public void Garbage_signature_block()
    {
        var head = _cli.Git("rev-parse", "HEAD");
        var tag = RawTag($"object {head}\ntype commit\ntag PLACEHOLDER\ntagger Supplier Release <release@supplier.example> 1700000000 +0000\n\nRelease\n" +
                         "-----BEGIN SSH SIGNATURE-----\nnot*base64\n-----END SSH SIGNATURE-----\n");
        AssertSameVerdict(tag, SshErrors.MalformedArmour, "ed25519");
    }

    [Test]
    public void Unsigned_annotated_tag_is_not_accepted()
    {
        var name = $"unsigned-{Guid.NewGuid():N}"[..16];
        _cli.Git("tag", "-a", "-m", "no signature", name);
        AssertSameVerdict(name, "not-ssh", "ed25519");
    }
}
