using System.Text.RegularExpressions;
using LibGit2Sharp;

namespace Pipeline.Engine.Vcs;

/// <summary>
/// A private bare mirror of a supplier repository (VCS A). Tags are fetched into
/// <c>refs/supplier-tags/*</c>, never into <c>refs/tags</c>, so nothing the supplier sends can
/// overwrite what the engine pushes onwards. Every object read from here is treated as hostile.
/// </summary>
public sealed class SupplierMirror : IDisposable
{
    private const string RemoteName = "supplier";
    private const string TagPrefix = "refs/supplier-tags/";
    private readonly Repository _repo;

    private SupplierMirror(Repository repo) => _repo = repo;

    public string Path => _repo.Info.Path;

    /// <summary>Opens (or creates) the mirror at <paramref name="dir"/> with its remote pointing at <paramref name="url"/>.</summary>
    public static SupplierMirror Open(string dir, Uri url)
    {
        if (!Directory.Exists(dir) || !Repository.IsValid(dir))
        {
            Directory.CreateDirectory(dir);
            Repository.Init(dir, isBare: true);
        }

        var repo = new Repository(dir);
        var remote = repo.Network.Remotes[RemoteName];
        if (remote is null) repo.Network.Remotes.Add(RemoteName, url.ToString(), "+" + "refs/tags/*:" + TagPrefix + "*");
        else if (remote.Url != url.ToString()) repo.Network.Remotes.Update(RemoteName, r => r.Url = url.ToString());
        return new SupplierMirror(repo);
    }

    /// <summary>Fetches all tags (and the history they reach) from the supplier.</summary>
    public void Fetch(GitCredentials? credentials, CancellationToken ct)
    {
        var options = new FetchOptions
        {
            TagFetchMode = TagFetchMode.None,
            Prune = true,
            CredentialsProvider = credentials?.Handler,
            OnTransferProgress = _ => !ct.IsCancellationRequested,
        };
        try
        {
            Commands.Fetch(_repo, RemoteName, ["+refs/tags/*:" + TagPrefix + "*"], options, "pipeline fetch");
        }
        catch (LibGit2SharpException e)
        {
            ct.ThrowIfCancellationRequested();
            throw new PipelineException("VCS-FETCH", $"fetching from the supplier repository failed: {Redact(e.Message)}", e);
        }
    }

    /// <summary>The supplier's tags whose names match <paramref name="pattern"/>, oldest version first.</summary>
    public IReadOnlyList<TagInfo> ListTags(Regex pattern)
    {
        var result = new List<TagInfo>();
        foreach (var r in _repo.Refs.FromGlob(TagPrefix + "*"))
        {
            var name = r.CanonicalName[TagPrefix.Length..];
            if (!pattern.IsMatch(name)) continue;
            var target = r.ResolveToDirectReference()?.Target;
            if (target is null) continue;
            result.Add(new TagInfo(name, target.Sha, target is TagAnnotation));
        }

        result.Sort((a, b) => VersionOrder.SortCompare(a.Name, b.Name));
        return result;
    }

    /// <summary>Reads an annotated tag; it must point (directly) at a commit.</summary>
    public AnnotatedTag ReadTag(string name)
    {
        var r = _repo.Refs[TagPrefix + name]?.ResolveToDirectReference()
                ?? throw new PipelineException("VCS-TAG-MISSING", $"tag '{name}' is not in the mirror");
        if (r.Target is not TagAnnotation tag)
            throw new PipelineException("FETCH-LIGHTWEIGHT-TAG", $"tag '{name}' is a lightweight tag; deliveries must be signed annotated tags (git tag -s)");
        if (!string.Equals(tag.Name, name, StringComparison.Ordinal))
            throw Replayed(name, tag);
        if (tag.Target is not Commit commit)
            throw new PipelineException("FETCH-TAG-TARGET", $"tag '{name}' points at a {tag.Target.GetType().Name.ToLowerInvariant()}, not at a commit");

        string? tagger = null;
        if (tag.Tagger is { } t)
            tagger = $"{t.Name} <{t.Email}> {t.When.ToUnixTimeSeconds()} {FormatOffset(t.When.Offset)}";
        return new AnnotatedTag(name, tag.Sha, commit.Sha, "commit", tagger, tag.Tagger?.When, tag.Message, commit.Sha, commit.Tree.Sha);
    }

    /// <summary>
    /// A signed tag object names its tag inside (<c>tag v1.0.0</c>); one found under another ref name was
    /// republished: a replay of an older signed release under a new version.
    /// </summary>
    private PipelineException Replayed(string name, TagAnnotation tag)
    {
        var alsoAt = _repo.Refs.FromGlob(TagPrefix + "*")
            .Where(r => r.ResolveToDirectReference()?.TargetIdentifier == tag.Sha)
            .Select(r => r.CanonicalName[TagPrefix.Length..])
            .Where(n => n != name)
            .Order(StringComparer.Ordinal)
            .ToList();
        var seen = alsoAt.Count > 0 ? $" (the supplier also publishes it as {string.Join(", ", alsoAt.Select(n => $"'{n}'"))})" : "";
        return new PipelineException("FETCH-TAG-REPLAYED",
            $"SECURITY: tag '{name}' is a replay: it is tag object {tag.Sha}, which was signed as tag '{Printable(tag.Name)}'{seen}. A signed release republished under another name is not a new release; ask the supplier to sign a new tag named '{name}'.");
    }

    /// <summary>
    /// Writes the tree of <paramref name="commitId"/> into the empty folder <paramref name="destination"/>.
    /// Symlinks, submodules, names like <c>..</c> or <c>.git</c> and anything beyond the limits are rejected,
    /// all before the first file is written (sizes come from the object headers, not the contents);
    /// then the contents are streamed out by <see cref="BlobExport"/>; <paramref name="written"/> is told
    /// the relative path of each file once it is complete.
    /// </summary>
    public ExportResult ExportTree(string commitId, string destination, ExportLimits limits, Action<string>? written, CancellationToken ct)
    {
        var commit = _repo.Lookup<Commit>(commitId) ?? throw new PipelineException("VCS-COMMIT-MISSING", $"commit {commitId} is not in the mirror");
        Directory.CreateDirectory(destination);
        if (Directory.EnumerateFileSystemEntries(destination).Any())
            throw new PipelineException("VCS-EXPORT-NOT-EMPTY", $"export folder '{destination}' is not empty");
        var files = 0;
        long total = 0;
        var blobs = new List<BlobToWrite>();
        Export(commit.Tree, destination, "", 0);
        BlobExport.WriteAll(_repo.Info.Path, blobs, written is null ? null : b => written(b.RelativePath), ct);
        return new ExportResult(files, total);

        void Export(Tree tree, string dir, string prefix, int depth)
        {
            if (depth > limits.MaxDepth)
                throw new PipelineException("FETCH-TREE-TOO-DEEP", $"'{prefix}' is nested deeper than {limits.MaxDepth} folders");
            foreach (var entry in tree)
            {
                ct.ThrowIfCancellationRequested();
                var rel = prefix + entry.Name;
                CheckName(entry.Name, rel);
                var path = System.IO.Path.Combine(dir, entry.Name);
                switch (entry.Mode)
                {
                    case Mode.Directory:
                        Directory.CreateDirectory(path);
                        Export((Tree)entry.Target, path, rel + "/", depth + 1);
                        break;
                    case Mode.NonExecutableFile or Mode.ExecutableFile or Mode.NonExecutableGroupWritableFile:
                        // The header only: Blob.Size would read and inflate the whole object.
                        var size = _repo.ObjectDatabase.RetrieveObjectMetadata(entry.Target.Id).Size;
                        if (++files > limits.MaxFiles)
                            throw new PipelineException("FETCH-TOO-MANY-FILES", $"the delivery has more than {limits.MaxFiles} files");
                        if (size > limits.MaxFileBytes)
                            throw new PipelineException("FETCH-FILE-TOO-LARGE", $"'{rel}' is {size} bytes, more than the limit of {limits.MaxFileBytes}");
                        total += size;
                        if (total > limits.MaxTotalBytes)
                            throw new PipelineException("FETCH-DELIVERY-TOO-LARGE", $"the delivery is larger than the limit of {limits.MaxTotalBytes} bytes");
                        blobs.Add(new BlobToWrite(entry.Target.Sha, size, path, entry.Mode == Mode.ExecutableFile, rel));
                        break;
                    case Mode.SymbolicLink:
                        throw new PipelineException("FETCH-SYMLINK", $"'{rel}' is a symbolic link; deliveries must contain regular files only");
                    case Mode.GitLink:
                        throw new PipelineException("FETCH-SUBMODULE", $"'{rel}' is a submodule; deliveries must be self-contained");
                    default:
                        throw new PipelineException("FETCH-UNSUPPORTED-ENTRY", $"'{rel}' has the unsupported git mode {entry.Mode}");
                }
            }
        }
    }

    internal static void CheckName(string name, string rel)
    {
        var trimmed = name.TrimEnd('.', ' ');
        if (name.Length == 0 || name is "." or ".." || name.Contains('/') || name.Contains('\\') || name.Any(char.IsControl)
            || trimmed.Equals(".git", StringComparison.OrdinalIgnoreCase))
            throw new PipelineException("FETCH-UNSAFE-PATH", $"the delivery contains the unsafe path '{Printable(rel)}'");
    }

    private static string Printable(string s) => new(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());

    /// <summary>The signature of a signed commit and the exact bytes it signs, or null when the commit is not signed.</summary>
    public (byte[] SignedData, string Signature)? ExtractCommitSignature(string commitId)
    {
        try
        {
            var info = Commit.ExtractSignature(_repo, new ObjectId(commitId));
            return (System.Text.Encoding.UTF8.GetBytes(info.SignedData), info.Signature);
        }
        catch (NotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Pushes the tag (and so all history it reaches) to the internal repository (VCS B) with the
    /// git binary (<see cref="GitPush"/>): the received pack's objects go out as they are, streamed.
    /// </summary>
    public Task PushTagAsync(string tagName, Uri internalUrl, GitCredentials? credentials, CancellationToken ct, TimeSpan? timeout = null) =>
        GitPush.PushAsync(_repo.Info.Path, TagPrefix + tagName, "refs/tags/" + tagName, internalUrl, credentials, timeout, ct);

    /// <summary>Synchronous <see cref="PushTagAsync"/>.</summary>
    public void PushTag(string tagName, Uri internalUrl, GitCredentials? credentials, CancellationToken ct) =>
        PushTagAsync(tagName, internalUrl, credentials, ct).GetAwaiter().GetResult();

    private static string FormatOffset(TimeSpan offset) =>
        (offset < TimeSpan.Zero ? "-" : "+") + offset.Duration().ToString("hhmm", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Removes anything that looks like user:password@ from a message.</summary>
    public static string Redact(string message) => Regex.Replace(message, @"://[^/@\s]+@", "://***@");

    public void Dispose() => _repo.Dispose();
}

public sealed record ExportResult(int Files, long Bytes);
