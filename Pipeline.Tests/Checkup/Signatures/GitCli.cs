using Pipeline.Tests.Support;
using System.Text;

namespace Pipeline.Tests.Checkup.Signatures;

/// <summary>Runs real git / ssh-keygen / gpg in a temp directory for signature tests.</summary>
internal sealed class GitCli : IDisposable
{
    public GitCli()
    {
        Dir = Path.Combine(Path.GetTempPath(), "chk-git-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
        Repo = Path.Combine(Dir, "repo");
        Directory.CreateDirectory(Repo);
        GnuPgHome = Path.Combine(Dir, "gnupg");
        Directory.CreateDirectory(GnuPgHome);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(GnuPgHome, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public string Dir { get; }
    public string Repo { get; }
    public string GnuPgHome { get; }

    public void InitRepoWithCommit()
    {
        Git("init", "-q", "-b", "main");
        File.WriteAllText(Path.Combine(Repo, "f.txt"), "content\n");
        Git("add", "f.txt");
        Git("commit", "-q", "-m", "first");
    }

    public string Git(params string[] args) => Encoding.UTF8.GetString(Run("git", Repo, null, args).Stdout).TrimEnd('\n');

    public byte[] GitBytes(byte[]? stdin, params string[] args) => Run("git", Repo, stdin, args).Stdout;

    public (int Exit, byte[] Stdout, string Stderr) TryRun(string file, byte[]? stdin, params string[] args) =>
        RunRaw(file, Repo, stdin, args);

    /// <summary>Generates an unencrypted SSH key; returns the private key path (public at path + ".pub").</summary>
    public string SshKey(string type, string name, int? bits = null)
    {
        var path = Path.Combine(Dir, name);
        var args = new List<string> { "-q", "-t", type, "-N", "", "-C", name + "@test", "-f", path };
        if (bits is not null) { args.Add("-b"); args.Add(bits.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)); }
        Run("ssh-keygen", Dir, null, [.. args]);
        return path;
    }

    public (int Exit, byte[] Stdout, string Stderr) Run(string file, string cwd, byte[]? stdin, params string[] args)
    {
        var r = RunRaw(file, cwd, stdin, args);
        if (r.Exit != 0) Assert.Fail($"{file} {string.Join(' ', args)} failed ({r.Exit}): {r.Stderr}");
        return r;
    }

    private (int Exit, byte[] Stdout, string Stderr) RunRaw(string file, string cwd, byte[]? stdin, string[] args) =>
        Shell.RunBytes(file, args, cwd, stdin, new Dictionary<string, string>
        {
            ["HOME"] = Dir,
            ["GNUPGHOME"] = GnuPgHome,
            ["GIT_AUTHOR_NAME"] = "Supplier Release", ["GIT_COMMITTER_NAME"] = "Supplier Release",
            ["GIT_AUTHOR_EMAIL"] = "release@supplier.example", ["GIT_COMMITTER_EMAIL"] = "release@supplier.example",
            ["GIT_COMMITTER_DATE"] = "1700000000 +0130", ["GIT_AUTHOR_DATE"] = "1700000000 +0130",
        });

    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
