using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Deploy;

/// <summary>The engine's own sshsig signer (for signed environment commits), checked by ssh-keygen itself.</summary>
public class SshSignerTests
{
    private static string NewKey(TempDir dir, string name, string passphrase = "")
    {
        var key = dir.Combine(name);
        Shell.Run("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", key]).EnsureSuccess("ssh-keygen");
        return key;
    }

    [Test]
    public void A_signature_verifies_with_ssh_keygen_and_with_the_checkup_verifier()
    {
        TestServices.RequireTool("ssh-keygen", "openssh-client");
        using var dir = new TempDir();
        var key = NewKey(dir, "deploy");
        var signer = SshSigner.FromFile(key);
        var message = Encoding.UTF8.GetBytes("tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n");
        var armored = signer.Sign(message, "git");

        File.WriteAllBytes(dir.Combine("msg"), message);
        File.WriteAllText(dir.Combine("msg.sig"), armored);
        File.WriteAllText(dir.Combine("allowed"), $"deploy@example {File.ReadAllText(key + ".pub").Trim()}\n");
        var ok = Shell.Run("ssh-keygen", ["-Y", "verify", "-f", dir.Combine("allowed"), "-I", "deploy@example", "-n", "git", "-s", dir.Combine("msg.sig")],
            stdin: Encoding.UTF8.GetString(message));
        Assert.That(ok.ExitCode, Is.EqualTo(0), ok.Stderr + ok.Stdout);
        Assert.That(ok.Stdout, Does.Contain("Good \"git\" signature"));

        var verified = SshSignatureVerifier.Verify(message, SshSignature.Parse(armored), "git", [SshPublicKey.Parse(File.ReadAllText(key + ".pub"))]);
        Assert.That(verified.Key.Fingerprint, Is.EqualTo(signer.PublicKey.Fingerprint));
        var altered = (byte[])message.Clone();
        altered[0] ^= 1;
        Assert.That(() => SshSignatureVerifier.Verify(altered, SshSignature.Parse(armored), "git", [signer.PublicKey]),
            Throws.InstanceOf<CheckupException>().With.Property("Code").EqualTo(SshErrors.SignatureInvalid), "the signature covers the message");
    }

    [Test]
    public void An_encrypted_or_non_ed25519_key_is_refused_with_its_reason()
    {
        TestServices.RequireTool("ssh-keygen", "openssh-client");
        using var dir = new TempDir();
        var encrypted = NewKey(dir, "encrypted", "secret passphrase");
        Assert.That(() => SshSigner.FromFile(encrypted),
            Throws.InstanceOf<CheckupException>().With.Property("Code").EqualTo(SshErrors.UnusablePrivateKey).And.Message.Contains("encrypted with a passphrase"));
        var ecdsa = dir.Combine("ecdsa");
        Shell.Run("ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", ecdsa]).EnsureSuccess("ssh-keygen");
        Assert.That(() => SshSigner.FromFile(ecdsa),
            Throws.InstanceOf<CheckupException>().With.Property("Code").EqualTo(SshErrors.UnusablePrivateKey).And.Message.Contains("only ssh-ed25519"));
        Assert.That(() => SshSigner.FromFile(ecdsa + ".pub"),
            Throws.InstanceOf<CheckupException>().With.Property("Code").EqualTo(SshErrors.UnusablePrivateKey).And.Message.Contains("OPENSSH PRIVATE KEY"));
        Assert.That(() => SshSigner.FromFile(dir.Combine("missing")),
            Throws.InstanceOf<CheckupException>().With.Property("Code").EqualTo(SshErrors.UnusablePrivateKey).And.Message.Contains("cannot read"));
    }
}
