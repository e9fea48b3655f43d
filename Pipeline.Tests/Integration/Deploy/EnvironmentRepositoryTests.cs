using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Deploy.GitOps;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>The GitOps writer against the real git http server, checked by git and kubectl themselves.</summary>
[Category("Integration")]
public class EnvironmentRepositoryTests
{
    private static readonly Guid DeliveryA = Guid.Parse("0192f3a0-0000-7000-8000-00000000000a");
    private static readonly Guid DeliveryB = Guid.Parse("0192f3a0-0000-7000-8000-00000000000b");

    [Test]
    public void The_desired_state_is_a_signed_commit_that_git_verifies_and_kustomize_builds_and_the_rest_of_the_repository_stays()
    {
        using var f = new GitOpsFixture();
        f.SeedFile("README.md", "operator's environment repository\n");
        EnvironmentCommit written;
        using (var repo = f.Open()) written = repo.Write(GitOpsFixture.Manifests("v1.0.0"), DeliveryA, "Abnahme", "Deploy fv v1.0.0 to Abnahme\n\nDelivery details", CancellationToken.None);
        Assert.That(written.Changed, Is.True);
        Assert.That(written.Previous, Is.Not.Null, "the seeded commit is its parent");

        var clone = f.Clone();
        Assert.That(Shell.Git(clone, "rev-parse", "HEAD").Stdout.Trim(), Is.EqualTo(written.Commit), "the branch holds the pushed commit");
        var verify = f.VerifyCommit(clone, "HEAD");
        Assert.That(verify.ExitCode, Is.EqualTo(0), verify.Stderr);
        Assert.That(verify.Stderr, Does.Contain("Good \"git\" signature for deploy@stage.example with ED25519 key"));
        Assert.That(File.ReadAllText(Path.Combine(clone, "README.md")), Is.EqualTo("operator's environment repository\n"), "only the stage folder changes");
        var message = Shell.Git(clone, "log", "-1", "--format=%B").Stdout;
        Assert.That(message, Does.StartWith("Deploy fv v1.0.0 to Abnahme").And.Contain($"Pipeline-Delivery: {DeliveryA:D}").And.Contain("Pipeline-Stage: Abnahme"));
        Assert.That(Shell.Git(clone, "log", "-1", "--format=%an <%ae> / %cn <%ce>").Stdout.Trim(), Is.EqualTo("Pipeline Abnahme <deploy@stage.example> / Pipeline Abnahme <deploy@stage.example>"));

        var kustomize = Shell.Run("kubectl", ["kustomize", Path.Combine(clone, "apps", "fv")]);
        Assert.That(kustomize.ExitCode, Is.EqualTo(0), kustomize.Stderr);
        Assert.That(kustomize.Stdout, Does.Contain("kind: Deployment").And.Contain("namespace: fv-abnahme").And.Contain("version: v1.0.0"));

        // Someone tampers with the signed commit's content: git says so.
        var tampered = Shell.Git(clone, "cat-file", "commit", "HEAD").Stdout.Replace("Deploy fv v1.0.0", "Deploy fv v6.6.6", StringComparison.Ordinal);
        var forged = Shell.Run("git", ["hash-object", "-t", "commit", "-w", "--stdin"], clone, tampered).Stdout.Trim();
        Assert.That(f.VerifyCommit(clone, forged).ExitCode, Is.Not.EqualTo(0), "a changed commit no longer verifies");
    }

    [Test]
    public void Writing_the_same_state_again_is_a_no_op_and_a_second_write_replaces_the_folder_completely()
    {
        using var f = new GitOpsFixture();
        using var repo = f.Open();
        var first = repo.Write(GitOpsFixture.Manifests("v1.0.0"), DeliveryA, "Abnahme", "Deploy v1", CancellationToken.None);
        Assert.That((first.Changed, first.Previous), Is.EqualTo((true, (string?)null)), "the first commit of a new branch");
        var again = repo.Write(GitOpsFixture.Manifests("v1.0.0"), DeliveryA, "Abnahme", "Deploy v1", CancellationToken.None);
        Assert.That((again.Changed, again.Commit), Is.EqualTo((false, first.Commit)), "a redeploy of the same desired state makes no commit");
        var otherDelivery = repo.Write(GitOpsFixture.Manifests("v1.0.0"), DeliveryB, "Abnahme", "Deploy v1 again", CancellationToken.None);
        Assert.That((otherDelivery.Changed, otherDelivery.Commit), Is.EqualTo((false, first.Commit)), "identical manifests from another delivery change nothing either");

        var smaller = new Dictionary<string, byte[]> { ["kustomization.yaml"] = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"u8.ToArray() };
        var second = repo.Write(smaller, DeliveryB, "Abnahme", "Deploy v2", CancellationToken.None);
        Assert.That((second.Changed, second.Previous), Is.EqualTo((true, first.Commit)));
        var clone = f.Clone();
        Assert.That(Directory.GetFiles(Path.Combine(clone, "apps", "fv")).Select(Path.GetFileName), Is.EqualTo(new[] { "kustomization.yaml" }), "files of the old state are gone");
        Assert.That(Shell.Git(clone, "rev-list", "--count", "HEAD").Stdout.Trim(), Is.EqualTo("2"));
    }

    [Test]
    public void A_revert_restores_the_previous_state_by_a_new_signed_commit_once_and_never_over_a_newer_deployment()
    {
        using var f = new GitOpsFixture();
        using var repo = f.Open();
        var v1 = repo.Write(GitOpsFixture.Manifests("v1.0.0"), DeliveryA, "Abnahme", "Deploy v1", CancellationToken.None);
        var v2 = repo.Write(GitOpsFixture.Manifests("v2.0.0"), DeliveryB, "Abnahme", "Deploy v2", CancellationToken.None);

        var reverted = repo.Revert(v2.Commit, v2.Previous, DeliveryB, "Abnahme", "Revert v2: verification failed", CancellationToken.None)!;
        Assert.That(reverted.Changed, Is.True);
        Assert.That(reverted.Tree, Is.EqualTo(v1.Tree), "the stage folder is exactly as before the failed deployment");
        var clone = f.Clone();
        Assert.That(f.VerifyCommit(clone, "HEAD").ExitCode, Is.EqualTo(0), "the revert is signed too");
        Assert.That(Shell.Git(clone, "rev-list", "--count", "HEAD").Stdout.Trim(), Is.EqualTo("3"), "history is kept: a new commit, no force push");
        Assert.That(File.ReadAllText(Path.Combine(clone, "apps", "fv", "deployment-web.yaml")), Does.Contain("v1.0.0"));

        var twice = repo.Revert(v2.Commit, v2.Previous, DeliveryB, "Abnahme", "Revert v2 again", CancellationToken.None)!;
        Assert.That((twice.Changed, twice.Commit), Is.EqualTo((false, reverted.Commit)), "resuming a revert does not revert twice");

        var v3 = repo.Write(GitOpsFixture.Manifests("v3.0.0"), DeliveryA, "Abnahme", "Deploy v3", CancellationToken.None);
        Assert.That(repo.Revert(v2.Commit, v2.Previous, DeliveryB, "Abnahme", "late revert", CancellationToken.None), Is.Null,
            "the environment moved on to another deployment: nothing is reverted");
        Assert.That(Shell.Git(f.Clone(), "rev-parse", "HEAD").Stdout.Trim(), Is.EqualTo(v3.Commit));
    }

    [Test]
    public void A_push_the_server_refuses_and_wrong_credentials_give_a_stable_code_and_an_unreachable_server_is_transient()
    {
        using var f = new GitOpsFixture();
        var hook = Path.Combine(f.Bare, "hooks", "pre-receive");
        File.WriteAllText(hook, "#!/bin/sh\necho 'branch main is protected' >&2\nexit 1\n");
        File.SetUnixFileMode(hook, (UnixFileMode)0b111_101_101);
        using (var repo = f.Open())
        {
            var e = Assert.Throws<DeployException>(() => repo.Write(GitOpsFixture.Manifests("v1"), DeliveryA, "Abnahme", "Deploy", CancellationToken.None))!;
            Assert.That(e.Code, Is.EqualTo(DeployErrors.PushRejected));
            Assert.That(e.IsTransient, Is.False);
            Assert.That(e.Message, Does.Contain("refused the push to branch main"));
        }

        File.Delete(hook);
        var wrong = f.Dir.Combine("wrong.cred");
        File.WriteAllText(wrong, "pipeline:not-the-password\n");
        using (var repo = EnvironmentRepository.Open(f.Dir.Combine("work"), f.Environment, GitCredentials.FromFile(wrong), SshSigner.FromFile(f.KeyFile), TimeProvider.System))
        {
            var e = Assert.Throws<DeployException>(() => repo.Write(GitOpsFixture.Manifests("v1"), DeliveryA, "Abnahme", "Deploy", CancellationToken.None))!;
            Assert.That((e.Code, e.IsTransient), Is.EqualTo((DeployErrors.PushRejected, false)), e.Message);
            Assert.That(e.Message, Does.Not.Contain("not-the-password"), "no secret in messages");
        }

        using var closed = new ClosedPort();
        var unreachable = f.Environment with { Repository = new Uri($"http://127.0.0.1:{closed.Port}/env.git") };
        using (var repo = f.Open(unreachable))
        {
            var e = Assert.Throws<DeployException>(() => repo.Write(GitOpsFixture.Manifests("v1"), DeliveryA, "Abnahme", "Deploy", CancellationToken.None))!;
            Assert.That((e.Code, e.IsTransient), Is.EqualTo((DeployErrors.Unreachable, true)), e.Message);
        }

        Assert.That(Shell.Run("git", ["--git-dir", f.Bare, "rev-parse", "--verify", "-q", "refs/heads/main"]).ExitCode, Is.Not.EqualTo(0), "nothing reached the branch");
    }

    [Test]
    public void An_unsafe_rendered_file_name_is_refused_before_anything_is_pushed()
    {
        using var f = new GitOpsFixture();
        using var repo = f.Open();
        var e = Assert.Throws<DeployException>(() => repo.Write(new Dictionary<string, byte[]> { ["../../escape.yaml"] = [] }, DeliveryA, "Abnahme", "Deploy", CancellationToken.None))!;
        Assert.That(e.Code, Is.EqualTo(DeployErrors.BadOutput));
        Assert.That(Shell.Run("git", ["--git-dir", f.Bare, "rev-parse", "--verify", "-q", "refs/heads/main"]).ExitCode, Is.Not.EqualTo(0));
    }
}
