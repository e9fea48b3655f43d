using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>Pushes the verified, scanned tag and the history it reaches to the internal git (VCS B), with the git binary (<see cref="GitPush"/>).</summary>
public sealed class PublishStage : IStage
{
    public string Name => "publish";

    public async Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        var tag = context.Annotated ?? throw new PipelineException("ENG-STAGE-ORDER", "publish needs the fetch stage first");
        var url = InternalRepositoryUrl(context);
        await context.Mirror.PushTagAsync(tag.Name, url, GitCredentials.FromFile(context.Settings.InternalGit.CredentialsFile), ct).ConfigureAwait(false);
        var evidence = StageOutcome.NewEvidence();
        evidence["repository"] = url.ToString();
        evidence["ref"] = "refs/tags/" + tag.Name;
        evidence["tagObject"] = tag.ObjectId;
        return new StageOutcome("sha1:" + tag.ObjectId, $"{url}#refs/tags/{tag.Name}@sha1:{tag.ObjectId}", evidence);
    }

    public static Uri InternalRepositoryUrl(DeliveryContext context) =>
        new(context.Settings.InternalGit.Url.ToString().TrimEnd('/') + "/" + context.Definition.Publish.Repository + ".git");
}
