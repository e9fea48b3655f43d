using Pipeline.Engine.Attestations;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Pushes the verified, scanned tag and the history it reaches to the internal git (VCS B), with the
/// git binary (<see cref="GitPush"/>). Statement: subject the internal tag; materials the supplier's
/// tag and the scan verdict.
/// </summary>
public sealed class PublishStep : IIntakeStep<Scanned, Published>
{
    public string Name => "publish";

    public async Task<StepResult<Published>> RunAsync(DeliveryContext context, Scanned input, StepEvidence found, CancellationToken ct)
    {
        var tag = input.Tag;
        var url = InternalRepositoryUrl(context);
        await context.Mirror.PushTagAsync(tag.Name, url, GitCredentials.FromFile(context.Settings.InternalGit.CredentialsFile), ct).ConfigureAwait(false);
        var evidence = StageOutcome.NewEvidence();
        evidence["repository"] = url.ToString();
        evidence["ref"] = "refs/tags/" + tag.Name;
        evidence["tagObject"] = tag.ObjectId;
        return new StepResult<Published>(new Published(input, url),
            new StageOutcome("sha1:" + tag.ObjectId, $"{url}#refs/tags/{tag.Name}@sha1:{tag.ObjectId}", evidence));
    }

    public InTotoStatement Attest(DeliveryContext context, Scanned input, StepResult<Published> result, DateTimeOffset finishedOn) =>
        StageAttestations.Passed(context, Name, input.Verified.Signer,
            [ResourceDescriptor.Of($"{result.Output.Repository}#refs/tags/{context.Tag.Name}", "gitTag", context.Tag.ObjectId)], Materials(context, input), result.Outcome, finishedOn);

    public InTotoStatement AttestFailure(DeliveryContext context, Scanned input, StepFailure failure, DateTimeOffset finishedOn) =>
        StageAttestations.Failed(context, Name, failure, [], Materials(context, input), finishedOn);

    private static List<ResourceDescriptor> Materials(DeliveryContext context, Scanned input)
    {
        List<ResourceDescriptor> materials = [StageAttestations.TagDescriptor(context)];
        if (StageAttestations.ScanVerdictDescriptor(input.VerdictDigest) is { } verdict) materials.Add(verdict);
        return materials;
    }

    public static Uri InternalRepositoryUrl(DeliveryContext context) =>
        new(context.Settings.InternalGit.Url.ToString().TrimEnd('/') + "/" + context.Definition.Publish.Repository + ".git");
}
