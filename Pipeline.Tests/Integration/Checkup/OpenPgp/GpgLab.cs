using Pipeline.Tests.Support;
using System.Text;

namespace Pipeline.Tests.Integration.Checkup.OpenPgp;

/// <summary>
/// A throw-away GnuPG home with real keys and a git repository with signed tags, plus the reference
/// verifiers (git verify-tag, gpgv) run against a separate home that holds only the allowed public keys.
/// </summary>
internal sealed class GpgLab : IDisposable
{
    private int _homes;

    public GpgLab()
    {
        Dir = Path.Combine(Path.GetTempPath(), "pgp-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Dir);
        SignHome = NewHome();
        Repo = Path.Combine(Dir, "repo");
        Directory.CreateDirectory(Repo);
        Git("init", "-q", "-b", "main");
        File.WriteAllText(Path.Combine(Repo, "f.txt"), "content\n");
        Git("add", "f.txt");
        Git("commit", "-q", "-m", "first");
    }

    public string Dir { get; }
    public string SignHome { get; }
    public string Repo { get; }

    /// <summary>Generates a key without passphrase; returns its primary fingerprint.</summary>
    public string GenKey(string uid, string algo, string expire = "never", string? fakedTime = null)
    {
        var args = new List<string> { "--batch", "--pinentry-mode", "loopback", "--passphrase", "" };
        if (fakedTime is not null) args.AddRange(["--faked-system-time", fakedTime]);
        args.AddRange(["--quick-gen-key", uid, algo, "sign", expire]);
        Gpg(SignHome, [.. args]);
        return Fingerprints(uid)[0];
    }

    /// <summary>Adds a signing subkey; returns its fingerprint.</summary>
    public string AddSigningSubkey(string fpr, string algo)
    {
        Gpg(SignHome, "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fpr, algo, "sign", "never");
        return Fingerprints(fpr)[^1];
    }

    /// <summary>Sets a new expiry on the primary key, optionally as if at <paramref name="fakedTime"/>.</summary>
    public void SetExpire(string fpr, string expire, string? fakedTime = null)
    {
        var args = new List<string> { "--batch", "--pinentry-mode", "loopback", "--passphrase", "" };
        if (fakedTime is not null) args.AddRange(["--faked-system-time", fakedTime]);
        args.AddRange(["--quick-set-expire", fpr, expire]);
        Gpg(SignHome, [.. args]);
    }

    /// <summary>Imports the revocation certificate gpg stored when it generated the key.</summary>
    public void Revoke(string fpr)
    {
        var rev = File.ReadAllText(Path.Combine(SignHome, "openpgp-revocs.d", fpr + ".rev"))
            .Replace(":-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----", StringComparison.Ordinal);
        var path = Path.Combine(Dir, fpr + ".rev");
        File.WriteAllText(path, rev);
        Gpg(SignHome, "--batch", "--import", path);
    }

    /// <summary>Revokes subkey number <paramref name="index"/> (1-based) with gpg --edit-key in batch mode.</summary>
    public void RevokeSubkey(string fpr, int index)
    {
        var script = Encoding.ASCII.GetBytes($"key {index}\nrevkey\ny\n0\n\ny\nsave\n");
        var r = RunRaw("gpg", Dir, script, SignHome, ["--batch", "--command-fd", "0", "--pinentry-mode", "loopback", "--passphrase", "", "--edit-key", fpr]);
        if (r.Exit != 0) Assert.Fail("gpg revkey failed: " + r.Stderr);
    }

    /// <summary>Fingerprints (primary first, then subkeys) of the key(s) matching <paramref name="who"/>.</summary>
    public List<string> Fingerprints(string who) =>
        Encoding.UTF8.GetString(Gpg(SignHome, "--with-colons", "--list-keys", who).Stdout)
            .Split('\n').Where(l => l.StartsWith("fpr:", StringComparison.Ordinal)).Select(l => l.Split(':')[9]).ToList();

    public string ListColons(string who) => Encoding.UTF8.GetString(Gpg(SignHome, "--with-colons", "--list-keys", who).Stdout);

    public byte[] ExportPublic(params string[] fprs) => Gpg(SignHome, ["--export", .. fprs]).Stdout;

    public string ExportArmored(params string[] fprs) => Encoding.ASCII.GetString(Gpg(SignHome, ["--armor", "--export", .. fprs]).Stdout);

    /// <summary>Creates a signed annotated tag; <paramref name="gpgOptions"/> are added to every gpg call git makes.</summary>
    public void SignTag(string tag, string signingKey, params string[] gpgOptions)
    {
        var program = "gpg";
        if (gpgOptions.Length > 0)
        {
            program = Path.Combine(Dir, "gpg-" + tag + ".sh");
            File.WriteAllText(program, "#!/bin/sh\nexec gpg " + string.Join(' ', gpgOptions.Select(o => "'" + o + "'")) + " \"$@\"\n");
            File.SetUnixFileMode(program, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        Git("-c", "gpg.program=" + program, "-c", "user.signingkey=" + signingKey, "tag", "-s", "-m", "release " + tag, tag);
    }

    public byte[] RawTag(string tagOrId) => Run("git", Repo, null, SignHome, "cat-file", "tag", tagOrId).Stdout;

    public string TagId(string tag) => Git("rev-parse", tag);

    /// <summary>Writes raw tag bytes as a new (possibly forged) tag object; returns its id.</summary>
    public string WriteTagObject(byte[] raw) =>
        Encoding.ASCII.GetString(Run("git", Repo, raw, SignHome, "hash-object", "-t", "tag", "-w", "--stdin", "--literally").Stdout).Trim();

    /// <summary>git verify-tag with a GNUPGHOME holding only the allowed public keys (as exported now).</summary>
    public (int Exit, string Output) GitVerifyTag(string tagOrId, params string[] allowedFprs)
    {
        var home = VerifyHome(allowedFprs);
        var r = RunRaw("git", Repo, null, home, ["-c", "gpg.program=gpg", "verify-tag", "--raw", tagOrId]);
        return (r.Exit, r.Stderr);
    }

    /// <summary>gpgv with a keyring file holding only the allowed public keys.</summary>
    public (int Exit, string Output) Gpgv(byte[] payload, byte[] signature, params string[] allowedFprs)
    {
        var n = Interlocked.Increment(ref _homes);
        var keyring = Path.Combine(Dir, $"allowed{n}.gpg");
        File.WriteAllBytes(keyring, allowedFprs.Length == 0 ? [] : ExportPublic(allowedFprs));
        var sig = Path.Combine(Dir, $"sig{n}.asc");
        var data = Path.Combine(Dir, $"payload{n}");
        File.WriteAllBytes(sig, signature);
        File.WriteAllBytes(data, payload);
        var r = RunRaw("gpgv", Dir, null, NewHome(), ["--status-fd", "2", "--keyring", keyring, sig, data]);
        return (r.Exit, r.Stderr);
    }

    private string VerifyHome(string[] allowedFprs)
    {
        var home = NewHome();
        if (allowedFprs.Length > 0)
        {
            var path = Path.Combine(home, "allowed.gpg");
            File.WriteAllBytes(path, ExportPublic(allowedFprs));
            Gpg(home, "--batch", "--import", path);
        }
        return home;
    }

    private string NewHome()
    {
        var home = Path.Combine(Dir, "h" + Interlocked.Increment(ref _homes));
        Directory.CreateDirectory(home);
        File.SetUnixFileMode(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return home;
    }

    public string Git(params string[] args) => Encoding.UTF8.GetString(Run("git", Repo, null, SignHome, args).Stdout).TrimEnd('\n');

    private (int Exit, byte[] Stdout, string Stderr) Gpg(string home, params string[] args) => Run("gpg", Dir, null, home, args);

    private (int Exit, byte[] Stdout, string Stderr) Run(string file, string cwd, byte[]? stdin, string home, params string[] args)
    {
        var r = RunRaw(file, cwd, stdin, home, args);
        if (r.Exit != 0) Assert.Fail($"{file} {string.Join(' ', args)} failed ({r.Exit}): {r.Stderr}");
        return r;
    }

    private (int Exit, byte[] Stdout, string Stderr) RunRaw(string file, string cwd, byte[]? stdin, string home, string[] args) =>
        Shell.RunBytes(file, args, cwd, stdin, new Dictionary<string, string>
        {
            ["HOME"] = Dir,
            ["GNUPGHOME"] = home,
            ["GIT_AUTHOR_NAME"] = "Supplier Release", ["GIT_COMMITTER_NAME"] = "Supplier Release",
            ["GIT_AUTHOR_EMAIL"] = "release@supplier.example", ["GIT_COMMITTER_EMAIL"] = "release@supplier.example",
        });

    public void Dispose()
    {
        for (var i = 1; i <= _homes; i++)
        {
            var home = Path.Combine(Dir, "h" + i);
            if (Directory.Exists(home)) RunRaw("gpgconf", Dir, null, home, ["--kill", "all"]);
        }
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
