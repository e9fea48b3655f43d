using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Deploy;

/// <summary>
/// The delivery's files for a deployment, read from VCS B (the copy the intake checked and
/// published), never from the supplier's VCS A: the published tag must still be the exact tag
/// object the intake verified, else nothing is deployed. Exported with the intake's hostile-tree
/// rules (no symlinks, submodules, unsafe names; size limits) into a fresh folder.
/// </summary>
public sealed class DeliveryTree : IDisposable
{
    private DeliveryTree(string root, string commit) => (Root, Commit) = (root, commit);

    /// <summary>The exported tree (delete with <see cref="Dispose"/>).</summary>
    public string Root { get; }

    /// <summary>The commit the tag points at in VCS B.</summary>
    public string Commit { get; }

    /// <exception cref="DeployException">DEPLOY-DELIVERY-TREE (transient when VCS B cannot be reached).</exception>
    public static DeliveryTree Export(EngineSettings settings, PipelineDefinition definition, string tag, string tagObjectId, CancellationToken ct)
    {
        var url = new Uri(settings.InternalGit.Url.ToString().TrimEnd('/') + "/" + definition.Publish.Repository + ".git");
        var dir = Path.Combine(settings.WorkDir, "deploy-trees", Guid.NewGuid().ToString("N"));
        try
        {
            using var mirror = SupplierMirror.Open(Path.Combine(dir, "git"), url);
            try
            {
                mirror.Fetch(GitCredentials.FromFile(settings.InternalGit.CredentialsFile), ct);
            }
            catch (PipelineException e)
            {
                throw new DeployException(DeployErrors.DeliveryTree, $"the delivery's published copy in VCS B ({url}) could not be fetched: {e.Message}; the deployment resumes on the next pass", isTransient: true, inner: e);
            }

            AnnotatedTag annotated;
            try
            {
                annotated = mirror.ReadTag(tag);
            }
            catch (PipelineException e)
            {
                throw new DeployException(DeployErrors.DeliveryTree, $"tag '{tag}' is not usable in VCS B ({url}): {e.Code} {e.Message}", inner: e);
            }

            if (!string.Equals(annotated.ObjectId, tagObjectId, StringComparison.OrdinalIgnoreCase))
                throw new DeployException(DeployErrors.DeliveryTree,
                    $"SECURITY: tag '{tag}' in VCS B ({url}) is tag object {annotated.ObjectId}, but the intake checked {tagObjectId}; the published copy was changed and is not deployed");
            var root = Path.Combine(dir, "tree");
            mirror.ExportTree(annotated.CommitId, root, ExportLimits.Default, null, ct);
            return new DeliveryTree(root, annotated.CommitId);
        }
        catch (PipelineException e) when (e is not DeployException)
        {
            TryDelete(dir);
            throw new DeployException(DeployErrors.DeliveryTree, $"the delivery's tree could not be exported from VCS B: {e.Code} {e.Message}", inner: e);
        }
        catch
        {
            TryDelete(dir);
            throw;
        }
    }

    public void Dispose() => TryDelete(Path.GetDirectoryName(Root)!);

    private static void TryDelete(string dir)
    {
        try
        {
            if (Directory.Exists(dir))
            {
                foreach (var f in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)) File.SetAttributes(f, FileAttributes.Normal);
                Directory.Delete(dir, recursive: true);
            }
        }
        catch (IOException)
        {
            // Left for the work folder's cleanup.
        }
    }
}
