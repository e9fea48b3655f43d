using System.Globalization;
using System.Text;
using LibGit2Sharp;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Deploy.GitOps;

/// <summary>What a write or revert did in the environment repository.</summary>
/// <param name="Commit">The branch's commit afterwards (the new signed commit, or the unchanged head).</param>
/// <param name="Previous">The branch's commit the stage's state came from (the parent of the new commit), or null for a new branch.</param>
/// <param name="Changed">False when the desired state was there already (no commit was made).</param>
/// <param name="Tree">The git tree of the stage's folder afterwards (sha1), or null when the folder is gone.</param>
public sealed record EnvironmentCommit(string Commit, string? Previous, bool Changed, string? Tree);

/// <summary>
/// One stage's environment repository in VCS B (a GitOps repository Argo CD or Flux watches):
/// writes a stage folder's desired state in an SSH-signed commit on the stage's branch and pushes
/// it, and reverts it by a new signed commit. Works in a fresh bare clone per call (no shared
/// working copy); only the stage's folder changes, the rest of the repository is kept.
/// Idempotent: a folder that already holds the desired state gives no commit; a delivery whose
/// commit is already the head (a crash after the push) gets its own commit back.
/// </summary>
public sealed class EnvironmentRepository : IDisposable
{
    public const string DeliveryTrailer = "Pipeline-Delivery";
    public const string StageTrailer = "Pipeline-Stage";
    private const string Remote = "environment";
    private const string LocalRef = "refs/pipeline/deploy";
    private const int MaxPushAttempts = 3;
    private readonly Repository _repo;
    private readonly string _dir;
    private readonly GitOpsEnvironment _env;
    private readonly GitCredentials? _credentials;
    private readonly SshSigner _signer;
    private readonly TimeProvider _time;

    private EnvironmentRepository(Repository repo, string dir, GitOpsEnvironment env, GitCredentials? credentials, SshSigner signer, TimeProvider time)
    {
        _repo = repo;
        _dir = dir;
        _env = env;
        _credentials = credentials;
        _signer = signer;
        _time = time;
    }

    /// <summary>Creates an empty bare repository in a new folder below <paramref name="workDir"/> with the environment as its remote.</summary>
    public static EnvironmentRepository Open(string workDir, GitOpsEnvironment env, GitCredentials? credentials, SshSigner signer, TimeProvider time)
    {
        var dir = Path.Combine(workDir, "environments", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        Repository.Init(dir, isBare: true);
        var repo = new Repository(dir);
        repo.Network.Remotes.Add(Remote, env.Repository.ToString());
        return new EnvironmentRepository(repo, dir, env, credentials, signer, time);
    }

    /// <summary>
    /// Makes the stage folder hold exactly <paramref name="files"/> (paths relative to the folder) in
    /// a signed commit with <paramref name="message"/> (trailers naming the delivery and stage are
    /// added), and pushes it. A concurrent push by someone else is retried on the new head.
    /// </summary>
    /// <exception cref="DeployException">DEPLOY-GITOPS-PUSH-REJECTED, DEPLOY-GITOPS-UNREACHABLE (transient), DEPLOY-GITOPS-OUTPUT.</exception>
    public EnvironmentCommit Write(IReadOnlyDictionary<string, byte[]> files, Guid deliveryId, string stage, string message, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            var head = Fetch(ct);
            if (head is not null && head.Message.Contains($"{DeliveryTrailer}: {deliveryId:D}\n", StringComparison.Ordinal)
                && head.Message.Contains($"{StageTrailer}: {stage}\n", StringComparison.Ordinal) && !head.Message.StartsWith("Revert", StringComparison.Ordinal)
                && SameFolder(head, files))
                return new EnvironmentCommit(head.Sha, head.Parents.FirstOrDefault()?.Sha, false, FolderTree(head));

            var definition = head is null ? new TreeDefinition() : TreeDefinition.From(head);
            if (head?[_env.Path] is not null) definition.Remove(_env.Path);
            foreach (var (rel, bytes) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
            {
                CheckPath(rel);
                using var stream = new MemoryStream(bytes, writable: false);
                definition.Add(_env.Path + "/" + rel, _repo.ObjectDatabase.CreateBlob(stream), Mode.NonExecutableFile);
            }

            var tree = _repo.ObjectDatabase.CreateTree(definition);
            if (head is not null && head.Tree.Sha == tree.Sha)
                return new EnvironmentCommit(head.Sha, head.Sha, false, FolderTree(head));

            var commit = CreateSignedCommit(tree, head, WithTrailers(message, deliveryId, stage));
            if (TryPush(commit, ct)) return new EnvironmentCommit(commit.Sha, head?.Sha, true, FolderTree(commit));
            if (attempt == MaxPushAttempts)
                throw new DeployException(DeployErrors.PushRejected,
                    $"the environment repository {_env.Repository} branch {_env.Branch} moved {MaxPushAttempts} times while the engine pushed; nothing was deployed, the next pass tries again");
        }
    }

    /// <summary>
    /// Restores the stage folder as it was in <paramref name="previous"/> (null: removes it) by a new
    /// signed commit, when the branch still holds what <paramref name="deployed"/> wrote there. Returns
    /// null when the environment moved on to another state since (nothing is reverted then).
    /// </summary>
    public EnvironmentCommit? Revert(string deployed, string? previous, Guid deliveryId, string stage, string message, CancellationToken ct)
    {
        for (var attempt = 1; ; attempt++)
        {
            var head = Fetch(ct) ?? throw new DeployException(DeployErrors.PushRejected, $"branch {_env.Branch} of {_env.Repository} is gone; there is nothing to revert");
            var deployedCommit = _repo.Lookup<Commit>(deployed);
            var previousCommit = previous is null ? null : _repo.Lookup<Commit>(previous);
            if (deployedCommit is null || (previous is not null && previousCommit is null))
                throw new DeployException(DeployErrors.PushRejected, $"commit {deployed} or {previous} is no longer on branch {_env.Branch} of {_env.Repository} (history was rewritten); nothing was reverted");
            var target = previousCommit is null ? null : FolderTree(previousCommit);
            if (FolderTree(head) == target) return new EnvironmentCommit(head.Sha, head.Sha, false, target);
            if (FolderTree(head) != FolderTree(deployedCommit)) return null;

            var definition = TreeDefinition.From(head);
            definition.Remove(_env.Path);
            if (previousCommit?[_env.Path] is { Target: Tree old }) definition.Add(_env.Path, old);
            var tree = _repo.ObjectDatabase.CreateTree(definition);
            var commit = CreateSignedCommit(tree, head, WithTrailers(message, deliveryId, stage));
            if (TryPush(commit, ct)) return new EnvironmentCommit(commit.Sha, head.Sha, true, target);
            if (attempt == MaxPushAttempts)
                throw new DeployException(DeployErrors.PushRejected, $"the environment repository {_env.Repository} branch {_env.Branch} kept moving; the revert was not pushed");
        }
    }

    private bool SameFolder(Commit head, IReadOnlyDictionary<string, byte[]> files)
    {
        var definition = new TreeDefinition();
        foreach (var (rel, bytes) in files)
        {
            CheckPath(rel);
            using var stream = new MemoryStream(bytes, writable: false);
            definition.Add(rel, _repo.ObjectDatabase.CreateBlob(stream), Mode.NonExecutableFile);
        }

        return FolderTree(head) == _repo.ObjectDatabase.CreateTree(definition).Sha;
    }

    private string? FolderTree(Commit c) => c[_env.Path] is { Target: Tree t } ? t.Sha : null;

    private static string WithTrailers(string message, Guid deliveryId, string stage) =>
        message.TrimEnd('\n') + $"\n\n{DeliveryTrailer}: {deliveryId:D}\n{StageTrailer}: {stage}\n";

    private static void CheckPath(string rel)
    {
        var parts = rel.Split('/');
        if (rel.Length == 0 || rel.Length > 512 || parts.Any(p => p.Length == 0))
            throw new DeployException(DeployErrors.BadOutput, $"the rendered file name '{rel}' is not a relative path");
        try
        {
            foreach (var p in parts) SupplierMirror.CheckName(p, rel);
        }
        catch (PipelineException e)
        {
            throw new DeployException(DeployErrors.BadOutput, $"the rendered file name is unsafe: {e.Message}", inner: e);
        }
    }

    /// <summary>Builds the commit object text, signs it (namespace git) and stores it with the signature in <c>gpgsig</c>.</summary>
    private Commit CreateSignedCommit(Tree tree, Commit? parent, string message)
    {
        var now = _time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var person = $"{_env.CommitterName} <{_env.CommitterEmail}> {now} +0000";
        var text = new StringBuilder().Append("tree ").Append(tree.Sha).Append('\n');
        if (parent is not null) text.Append("parent ").Append(parent.Sha).Append('\n');
        text.Append("author ").Append(person).Append('\n').Append("committer ").Append(person).Append("\n\n").Append(message);
        var content = text.ToString();
        var signature = _signer.Sign(Encoding.UTF8.GetBytes(content), "git");
        var id = _repo.ObjectDatabase.CreateCommitWithSignature(content, signature);
        return _repo.Lookup<Commit>(id);
    }

    /// <summary>Fetches the stage branch; its head, or null when the branch does not exist yet.</summary>
    private Commit? Fetch(CancellationToken ct)
    {
        var options = new FetchOptions
        {
            TagFetchMode = TagFetchMode.None,
            CredentialsProvider = _credentials?.Handler,
            OnTransferProgress = _ => !ct.IsCancellationRequested,
        };
        try
        {
            Commands.Fetch(_repo, Remote, [$"+refs/heads/{_env.Branch}:refs/remotes/{Remote}/{_env.Branch}"], options, "pipeline deploy");
        }
        catch (LibGit2SharpException e)
        {
            ct.ThrowIfCancellationRequested();
            throw Failure("fetching", e);
        }

        return _repo.Refs[$"refs/remotes/{Remote}/{_env.Branch}"]?.ResolveToDirectReference()?.Target as Commit;
    }

    /// <summary>Pushes <paramref name="commit"/> onto the branch (fast-forward only); false when the branch moved meanwhile.</summary>
    private bool TryPush(Commit commit, CancellationToken ct)
    {
        _repo.Refs.Add(LocalRef, commit.Id, allowOverwrite: true);
        string? refused = null;
        var options = new PushOptions
        {
            CredentialsProvider = _credentials?.Handler,
            OnPushStatusError = e => refused = e.Message,
            OnPushTransferProgress = (_, _, _) => !ct.IsCancellationRequested,
        };
        try
        {
            _repo.Network.Push(_repo.Network.Remotes[Remote], $"{LocalRef}:refs/heads/{_env.Branch}", options);
        }
        catch (NonFastForwardException)
        {
            return false;
        }
        catch (LibGit2SharpException e)
        {
            ct.ThrowIfCancellationRequested();
            throw Failure("pushing to", e);
        }

        if (refused is null) return true;
        if (refused.Contains("fast-forward", StringComparison.OrdinalIgnoreCase) || refused.Contains("fetch first", StringComparison.OrdinalIgnoreCase)) return false;
        throw new DeployException(DeployErrors.PushRejected,
            $"the environment repository {_env.Repository} refused the push to branch {_env.Branch}: {SupplierMirror.Redact(refused)}; check the branch protection and the engine's rights there");
    }

    private DeployException Failure(string what, LibGit2SharpException e)
    {
        var text = SupplierMirror.Redact(e.Message);
        // An answer from the server (denied, not found) is a setting to fix; no answer is an outage to wait out.
        var refused = text.Contains("authentication", StringComparison.OrdinalIgnoreCase) || text.Contains("status code: 4", StringComparison.OrdinalIgnoreCase)
                      || text.Contains("401", StringComparison.Ordinal) || text.Contains("403", StringComparison.Ordinal) || text.Contains("404", StringComparison.Ordinal);
        return refused
            ? new DeployException(DeployErrors.PushRejected, $"{what} the environment repository {_env.Repository} was refused: {text}; check its URL and the engine's credentials there", inner: e)
            : new DeployException(DeployErrors.Unreachable, $"{what} the environment repository {_env.Repository} failed: {text}; the deployment resumes on the next pass", isTransient: true, inner: e);
    }

    public void Dispose()
    {
        _repo.Dispose();
        try
        {
            DeleteTree(_dir);
        }
        catch (IOException)
        {
            // A leftover temp clone is harmless; the work dir's cleanup removes it.
        }
    }

    private static void DeleteTree(string dir)
    {
        foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)) File.SetAttributes(f, FileAttributes.Normal);
        Directory.Delete(dir, recursive: true);
    }
}
