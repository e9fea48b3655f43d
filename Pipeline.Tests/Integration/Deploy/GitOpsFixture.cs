using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Deploy.GitOps;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// An environment repository on the real git http server (VCS B stand-in), a deploy key, and the
/// independent checks: a clone by the git CLI, <c>git verify-commit</c> with an allowed-signers
/// file, <c>kubectl kustomize</c> on the checked-out stage folder.
/// </summary>
public sealed class GitOpsFixture : IDisposable
{
    public GitOpsFixture(string path = "apps/fv")
    {
        TestServices.RequireTool("ssh-keygen", "openssh-client");
        TestServices.RequireTool("kubectl", "kubectl");
        Name = "env-" + Guid.NewGuid().ToString("N")[..10];
        Bare = Path.Combine(TestServices.Require("PIPELINE_GIT_ROOT"), "internal", "environments", Name + ".git");
        Shell.Run("git", ["init", "-q", "--bare", "--initial-branch=main", Bare]).EnsureSuccess("init environment repository");
        Url = new Uri($"{TestServices.Require("PIPELINE_GIT_HTTP")}/internal/environments/{Name}.git");
        var user = TestServices.Require("PIPELINE_GIT_USER");
        var password = File.ReadAllText(TestServices.Require("PIPELINE_GIT_PASSWORD_FILE")).Trim();
        CredentialsFile = Dir.Combine("git.cred");
        File.WriteAllText(CredentialsFile, $"{user}:{password}\n");
        AuthUrl = $"{Url.Scheme}://{Uri.EscapeDataString(user)}:{Uri.EscapeDataString(password)}@{Url.Authority}{Url.AbsolutePath}";
        KeyFile = Dir.Combine("deploy-key");
        Shell.Run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "deploy", "-f", KeyFile]).EnsureSuccess("ssh-keygen");
        AllowedSigners = Dir.Combine("allowed_signers");
        File.WriteAllText(AllowedSigners, $"deploy@stage.example namespaces=\"git\" {File.ReadAllText(KeyFile + ".pub").Trim()}\n");
        Environment = new GitOpsEnvironment(Url, CredentialsFile, "main", path, "fv-abnahme", KeyFile, "Pipeline Abnahme", "deploy@stage.example", null,
            new Dictionary<string, string>());
    }

    public TempDir Dir { get; } = new("gitops-");
    public string Name { get; }
    public string Bare { get; }
    public Uri Url { get; }
    public string AuthUrl { get; }
    public string CredentialsFile { get; }
    public string KeyFile { get; }
    public string AllowedSigners { get; }
    public GitOpsEnvironment Environment { get; }

    public EnvironmentRepository Open(GitOpsEnvironment? env = null, TimeProvider? time = null) =>
        EnvironmentRepository.Open(Dir.Combine("work"), env ?? Environment, GitCredentials.FromFile(CredentialsFile), SshSigner.FromFile(KeyFile), time ?? TimeProvider.System);

    /// <summary>Commits a file with the git CLI as another operator would (unsigned), straight into the bare repository.</summary>
    public void SeedFile(string name, string content)
    {
        var work = Dir.Combine("seed-" + Guid.NewGuid().ToString("N")[..6]);
        Shell.Run("git", ["clone", "-q", AuthUrl, work]).EnsureSuccess("clone");
        File.WriteAllText(Path.Combine(work, name), content);
        Shell.Git(work, "add", name).EnsureSuccess("add");
        Shell.Git(work, "-c", "user.name=Operator", "-c", "user.email=op@example", "commit", "-q", "-m", "seed " + name).EnsureSuccess("commit");
        Shell.Git(work, "push", "-q", "origin", "HEAD:main").EnsureSuccess("push");
    }

    /// <summary>A fresh clone of the branch by the git CLI.</summary>
    public string Clone()
    {
        var work = Dir.Combine("clone-" + Guid.NewGuid().ToString("N")[..6]);
        Shell.Run("git", ["clone", "-q", "--branch", "main", AuthUrl, work]).EnsureSuccess("clone");
        return work;
    }

    public Shell.Result VerifyCommit(string clone, string rev) =>
        Shell.Git(clone, "-c", $"gpg.ssh.allowedSignersFile={AllowedSigners}", "verify-commit", "--raw", rev);

    public static Dictionary<string, byte[]> Manifests(string version, string ns = "fv-abnahme") => new()
    {
        ["kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment-web.yaml\n"u8.ToArray(),
        ["deployment-web.yaml"] = System.Text.Encoding.UTF8.GetBytes($"""
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: web
              namespace: {ns}
              labels: {"{"} app: web, version: "{version}" {"}"}
            spec:
              replicas: 1
              selector: {"{"} matchLabels: {"{"} app: web {"}"} {"}"}
              template:
                metadata: {"{"} labels: {"{"} app: web {"}"} {"}"}
                spec:
                  containers:
                    - name: web
                      image: 127.0.0.1:5000/stage/app@sha256:{new string('a', 64)}

            """),
    };

    public void Dispose()
    {
        Dir.Dispose();
        try
        {
            Directory.Delete(Bare, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
