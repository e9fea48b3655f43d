namespace Pipeline.Tests.Support;

/// <summary>An OpenPGP key made by gpg in a private GNUPGHOME, for signing tags in tests.</summary>
public sealed record GpgKey(string Home, string Fingerprint, string ArmoredPublicKey)
{
    public static GpgKey Create(string home, string uid = "Release Signing <release@supplier.example>", string algo = "ed25519")
    {
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var env = new Dictionary<string, string> { ["GNUPGHOME"] = home };
        Shell.Run("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", uid, algo, "sign", "never"], env: env).EnsureSuccess("gpg --quick-gen-key");
        var colons = Shell.Run("gpg", ["--batch", "--with-colons", "--list-keys"], env: env).EnsureSuccess("gpg --list-keys").Stdout;
        var fpr = colons.Split('\n').First(l => l.StartsWith("fpr:", StringComparison.Ordinal)).Split(':')[9];
        var pub = Shell.Run("gpg", ["--batch", "--armor", "--export", fpr], env: env).EnsureSuccess("gpg --export").Stdout;
        return new GpgKey(home, fpr, pub);
    }

    /// <summary>Signs an annotated tag in <paramref name="workTree"/> with this key.</summary>
    public void SignTag(string workTree, string tag, string message = "Release")
    {
        Shell.Run("git", ["-c", "gpg.program=gpg", "-c", "user.signingkey=" + Fingerprint, "tag", "-s", "-m", message, tag], workTree,
            env: new Dictionary<string, string> { ["GNUPGHOME"] = Home }).EnsureSuccess("git tag -s (OpenPGP)");
    }

    /// <summary>The public key as YAML block scalar lines, indented for a signer entry.</summary>
    public string YamlBlock(int indent) =>
        "|\n" + string.Join("\n", ArmoredPublicKey.TrimEnd().Split('\n').Select(l => new string(' ', indent) + l));
}
