using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Tests.Support;

/// <summary>
/// Builds a supplier repository (VCS A) with the git CLI: files, a SHA256SUMS manifest, and tags
/// signed with an SSH key generated on the spot. Used by VCS, checkup and end-to-end tests.
/// </summary>
public sealed class SupplierRepo
{
    public SupplierRepo(string workTree)
    {
        WorkTree = workTree;
        Directory.CreateDirectory(workTree);
        Shell.Git(workTree, "init", "-q", "-b", "main").EnsureSuccess("git init");
        Shell.Git(workTree, "config", "user.name", "Supplier Release").EnsureSuccess("git config");
        Shell.Git(workTree, "config", "user.email", "release@supplier.example").EnsureSuccess("git config");
    }

    public string WorkTree { get; }

    public static SshKey NewKey(string dir, string name = "signer", string type = "ed25519")
    {
        Directory.CreateDirectory(dir);
        var path = System.IO.Path.Combine(dir, name);
        var args = new List<string> { "-q", "-t", type, "-N", "", "-C", name + "@supplier.example", "-f", path };
        if (type == "rsa") args.InsertRange(0, ["-b", "3072"]);
        Shell.Run("ssh-keygen", args).EnsureSuccess("ssh-keygen");
        return new SshKey(path, File.ReadAllText(path + ".pub").Trim());
    }

    public void Write(string relative, string content) => Write(relative, Encoding.UTF8.GetBytes(content));

    public void Write(string relative, byte[] content)
    {
        var p = System.IO.Path.Combine(WorkTree, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllBytes(p, content);
    }

    /// <summary>Writes SHA256SUMS over every file in the work tree (except .git and the manifest).</summary>
    public void WriteChecksums(string manifest = "SHA256SUMS", IEnumerable<string>? skip = null)
    {
        var skipSet = new HashSet<string>(skip ?? [], StringComparer.Ordinal) { manifest };
        var lines = Directory.EnumerateFiles(WorkTree, "*", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(WorkTree, f).Replace('\\', '/'))
            .Where(r => !r.StartsWith(".git/", StringComparison.Ordinal) && !skipSet.Contains(r))
            .Order(StringComparer.Ordinal)
            .Select(r => $"{Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(System.IO.Path.Combine(WorkTree, r))))}  {r}");
        File.WriteAllText(System.IO.Path.Combine(WorkTree, manifest), string.Join("\n", lines) + "\n");
    }

    public string Commit(string message)
    {
        Shell.Git(WorkTree, "add", "-A").EnsureSuccess("git add");
        Shell.Git(WorkTree, "commit", "-q", "-m", message).EnsureSuccess("git commit");
        return Shell.Git(WorkTree, "rev-parse", "HEAD").EnsureSuccess("rev-parse").Stdout.Trim();
    }

    /// <summary>Creates an annotated tag signed with <paramref name="key"/> (SSH signature, namespace git).</summary>
    public string SignedTag(string name, SshKey key, string message = "Release", bool force = false)
    {
        var args = new List<string> { "-c", "gpg.format=ssh", "-c", "user.signingkey=" + key.PublicKeyPath, "tag", "-s", "-m", message };
        if (force) args.Add("-f");
        args.Add(name);
        Shell.Run("git", args, WorkTree).EnsureSuccess("git tag -s");
        return Shell.Git(WorkTree, "rev-parse", name).EnsureSuccess("rev-parse").Stdout.Trim();
    }

    public void LightweightTag(string name) => Shell.Git(WorkTree, "tag", name).EnsureSuccess("git tag");

    public void AnnotatedUnsignedTag(string name) => Shell.Git(WorkTree, "tag", "-a", "-m", "unsigned", name).EnsureSuccess("git tag -a");

    /// <summary>Pushes every tag and branch to a bare repository (filesystem path or URL).</summary>
    public void PushTo(string remote, bool force = false)
    {
        var args = new List<string> { "push", "-q" };
        if (force) args.Add("--force");
        args.AddRange([remote, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"]);
        Shell.Run("git", args, WorkTree).EnsureSuccess("git push");
    }
}

public sealed record SshKey(string PrivateKeyPath, string PublicKey)
{
    public string PublicKeyPath => PrivateKeyPath + ".pub";
}
