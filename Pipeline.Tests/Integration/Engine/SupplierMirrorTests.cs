using System.Text.RegularExpressions;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Engine;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

[Category("Integration")]
public class SupplierMirrorTests
{
    private static readonly Regex Releases = new(@"^v\d+\.\d+\.\d+$");

    /// <summary>A bare repository on the real git HTTP server, with credentials in a file.</summary>
    internal static (Uri Url, string CredentialsFile, string BarePath) ServerRepo(TempDir dir, string path)
    {
        var root = TestServices.Require("PIPELINE_GIT_ROOT");
        var http = TestServices.Require("PIPELINE_GIT_HTTP");
        var user = TestServices.Require("PIPELINE_GIT_USER");
        var password = File.ReadAllText(TestServices.Require("PIPELINE_GIT_PASSWORD_FILE")).Trim();
        var bare = Path.Combine(root, path + ".git");
        Shell.Run("git", ["init", "-q", "--bare", bare]).EnsureSuccess("git init --bare");
        var cred = dir.Combine("git.cred");
        File.WriteAllText(cred, $"{user}:{password}\n");
        return (new Uri($"{http}/{path}.git"), cred, bare);
    }

    [Test]
    public void Fetches_over_http_lists_only_matching_tags_and_rebuilds_the_tag_object_exactly()
    {
        using var dir = new TempDir();
        var key = SupplierRepo.NewKey(dir.Combine("keys"));
        var repo = new SupplierRepo(dir.Combine("w"));
        repo.Write("bin/app", "binary");
        repo.Commit("one");
        var id = repo.SignedTag("v1.2.0", key, "Release 1.2.0\n\nwith notes\n");
        repo.LightweightTag("v1.3.0");
        repo.SignedTag("nightly-1", key);
        var (url, cred, bare) = ServerRepo(dir, "supplier/mirror-" + Guid.NewGuid().ToString("N")[..8]);
        repo.PushTo(bare);

        using var mirror = SupplierMirror.Open(dir.Combine("mirror.git"), url);
        mirror.Fetch(GitCredentials.FromFile(cred), default);
        var tags = mirror.ListTags(Releases);
        Assert.That(tags.Select(t => (t.Name, t.IsAnnotated)), Is.EqualTo(new[] { ("v1.2.0", true), ("v1.3.0", false) }));
        Assert.That(tags[0].ObjectId, Is.EqualTo(id));

        var tag = mirror.ReadTag("v1.2.0");
        var raw = GitTagObject.Build(tag.TargetId, tag.TargetType, tag.Name, tag.Tagger, tag.Message);
        Assert.That(GitTagObject.ComputeId(raw), Is.EqualTo(id), "the rebuilt tag object must be byte-identical to git's");
        var rawFromGit = Shell.Git(repo.WorkTree, "cat-file", "tag", "v1.2.0").EnsureSuccess("cat-file").Stdout;
        Assert.That(System.Text.Encoding.UTF8.GetString(raw), Is.EqualTo(rawFromGit));

        var e = Assert.Throws<PipelineException>(() => mirror.ReadTag("v1.3.0"))!;
        Assert.That(e.Code, Is.EqualTo("FETCH-LIGHTWEIGHT-TAG"));
    }

    [Test]
    public void Wrong_credentials_fail_with_a_code_and_never_show_the_password()
    {
        using var dir = new TempDir();
        var (url, _, _) = ServerRepo(dir, "supplier/creds-" + Guid.NewGuid().ToString("N")[..8]);
        var bad = dir.Combine("bad.cred");
        File.WriteAllText(bad, "pipeline:Sup3rSecretWrong\n");
        using var mirror = SupplierMirror.Open(dir.Combine("mirror.git"), url);
        var e = Assert.Throws<PipelineException>(() => mirror.Fetch(GitCredentials.FromFile(bad), default))!;
        Assert.That(e.Code, Is.EqualTo("VCS-FETCH"));
        Assert.That(e.ToString(), Does.Not.Contain("Sup3rSecretWrong"));
    }

    [Test]
    public void A_malformed_credentials_file_is_a_clear_error()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("c"), "no-colon-here");
        var e = Assert.Throws<PipelineException>(() => GitCredentials.FromFile(dir.Combine("c")))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("VCS-CREDENTIALS", $"the credentials file '{dir.Combine("c")}' must hold one line 'user:password'")));
    }

    [Test]
    public void Exports_regular_files_with_their_executable_bit()
    {
        using var dir = new TempDir();
        var repo = new SupplierRepo(dir.Combine("w"));
        repo.Write("bin/app", "#!/bin/sh\n");
        File.SetUnixFileMode(dir.Combine("w", "bin", "app"), (UnixFileMode)0b111_101_101);
        repo.Write("docs/a.md", "docs");
        var commit = repo.Commit("c");
        repo.AnnotatedUnsignedTag("v1.0.0");
        using var mirror = SupplierMirror.Open(dir.Combine("m.git"), new Uri("file://" + repo.WorkTree));
        mirror.Fetch(null, default);
        var result = mirror.ExportTree(commit, dir.Combine("out"), ExportLimits.Default, null, default);
        Assert.That((result.Files, result.Bytes), Is.EqualTo((2, 14L)));
        Assert.That(File.GetUnixFileMode(dir.Combine("out", "bin", "app")) & UnixFileMode.UserExecute, Is.EqualTo(UnixFileMode.UserExecute));
        Assert.That(File.GetUnixFileMode(dir.Combine("out", "docs", "a.md")) & UnixFileMode.UserExecute, Is.EqualTo((UnixFileMode)0));
    }

    [TestCase("symlink", "FETCH-SYMLINK")]
    [TestCase("dotdot", "FETCH-UNSAFE-PATH")]
    [TestCase("dotgit", "FETCH-UNSAFE-PATH")]
    [TestCase("DotGitUpper", "FETCH-UNSAFE-PATH")]
    public void Hostile_trees_are_rejected_before_anything_is_written_outside(string kind, string code)
    {
        using var dir = new TempDir();
        var repo = new SupplierRepo(dir.Combine("w"));
        repo.Write("ok.txt", "ok");
        repo.Commit("base");
        var blob = Shell.Git(repo.WorkTree, "hash-object", "-w", "ok.txt").EnsureSuccess("hash-object").Stdout.Trim();
        string entry = kind switch
        {
            "symlink" => $"120000 blob {Shell.Run("git", ["hash-object", "-w", "--stdin"], repo.WorkTree, stdin: "/etc/passwd").Stdout.Trim()}\tlink",
            "dotdot" => $"040000 tree {Shell.Run("git", ["mktree"], repo.WorkTree, stdin: $"100644 blob {blob}\tescaped\n").Stdout.Trim()}\t..",
            "dotgit" => $"040000 tree {Shell.Run("git", ["mktree"], repo.WorkTree, stdin: $"100644 blob {blob}\tconfig\n").Stdout.Trim()}\t.git",
            _ => $"100644 blob {blob}\t.GIT",
        };
        var tree = Shell.Run("git", ["mktree"], repo.WorkTree, stdin: $"100644 blob {blob}\tok.txt\n{entry}\n").EnsureSuccess("mktree").Stdout.Trim();
        var commit = Shell.Git(repo.WorkTree, "commit-tree", tree, "-m", "hostile").EnsureSuccess("commit-tree").Stdout.Trim();
        Shell.Git(repo.WorkTree, "update-ref", "refs/tags/v6.6.6", commit).EnsureSuccess("update-ref");

        using var mirror = SupplierMirror.Open(dir.Combine("m.git"), new Uri("file://" + repo.WorkTree));
        mirror.Fetch(null, default);
        var e = Assert.Throws<PipelineException>(() => mirror.ExportTree(commit, dir.Combine("out"), ExportLimits.Default, null, default))!;
        Assert.That(e.Code, Is.EqualTo(code));
        Assert.That(File.Exists(dir.Combine("escaped")), Is.False);
    }

    [Test]
    public void Limits_reject_oversized_deliveries_instead_of_truncating()
    {
        using var dir = new TempDir();
        var repo = new SupplierRepo(dir.Combine("w"));
        repo.Write("a", new byte[1000]);
        repo.Write("b", new byte[10]);
        var commit = repo.Commit("c");
        repo.AnnotatedUnsignedTag("v1.0.0");
        using var mirror = SupplierMirror.Open(dir.Combine("m.git"), new Uri("file://" + repo.WorkTree));
        mirror.Fetch(null, default);
        var e = Assert.Throws<PipelineException>(() => mirror.ExportTree(commit, dir.Combine("o1"), ExportLimits.Default with { MaxFileBytes = 999 }, null, default))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("FETCH-FILE-TOO-LARGE", "'a' is 1000 bytes, more than the limit of 999")));
        e = Assert.Throws<PipelineException>(() => mirror.ExportTree(commit, dir.Combine("o2"), ExportLimits.Default with { MaxFiles = 1 }, null, default))!;
        Assert.That(e.Code, Is.EqualTo("FETCH-TOO-MANY-FILES"));
    }

    [Test]
    public void Pushes_a_tag_and_its_history_to_the_internal_repository()
    {
        using var dir = new TempDir();
        var key = SupplierRepo.NewKey(dir.Combine("keys"));
        var repo = new SupplierRepo(dir.Combine("w"));
        repo.Write("a", "1");
        repo.Commit("first");
        repo.Write("a", "2");
        var head = repo.Commit("second");
        var tagId = repo.SignedTag("v1.0.0", key);
        using var mirror = SupplierMirror.Open(dir.Combine("m.git"), new Uri("file://" + repo.WorkTree));
        mirror.Fetch(null, default);
        var (url, cred, bare) = ServerRepo(dir, "internal/push-" + Guid.NewGuid().ToString("N")[..8]);

        mirror.PushTag("v1.0.0", url, GitCredentials.FromFile(cred), default);
        Assert.That(Shell.Run("git", ["--git-dir", bare, "rev-parse", "refs/tags/v1.0.0"]).Stdout.Trim(), Is.EqualTo(tagId));
        Assert.That(Shell.Run("git", ["--git-dir", bare, "rev-list", "--count", head]).Stdout.Trim(), Is.EqualTo("2"), "the history reached by the tag is pushed too");

        // Pushing the same tag again is a no-op; a different object under the same name is refused.
        mirror.PushTag("v1.0.0", url, GitCredentials.FromFile(cred), default);
        repo.SignedTag("v1.0.0", key, "moved", force: true);
        mirror.Fetch(null, default);
        var e = Assert.Throws<PipelineException>(() => mirror.PushTag("v1.0.0", url, GitCredentials.FromFile(cred), default))!;
        Assert.That(e.Code, Is.AnyOf("PUBLISH-REJECTED", "PUBLISH-PUSH"));
    }
}
