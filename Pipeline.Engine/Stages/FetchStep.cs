using Pipeline.Engine.Attestations;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Reads the annotated tag from the mirror (lightweight tags are rejected; a tag name that now
/// points at another object than when first seen is a security event) and writes the tagged tree
/// into the delivery's private folder, rejecting unsafe paths, links and oversized content.
/// Statement: subjects the tag and its commit.
/// </summary>
public sealed class FetchStep(ExportLimits limits) : IIntakeStep<FetchInput, Fetched>
{
    public string Name => "fetch";

    public Task<StepResult<Fetched>> RunAsync(DeliveryContext context, FetchInput input, StepEvidence found, CancellationToken ct)
    {
        if (input.FirstSeenObjectId is { } first && first != input.Tag.ObjectId)
            throw new PipelineException("FETCH-TAG-MOVED",
                $"SECURITY: tag '{input.Tag.Name}' now points at tag object {input.Tag.ObjectId}, but it pointed at {first} when first seen; a published release tag must never change. Ask the supplier to publish a new version tag.");
        if (!input.Tag.IsAnnotated)
            throw new PipelineException("FETCH-LIGHTWEIGHT-TAG", $"tag '{input.Tag.Name}' is a lightweight tag; deliveries must be signed annotated tags (git tag -s)");

        var tag = context.Mirror.ReadTag(input.Tag.Name);
        // The commit is known from here on: a failed export still attests about it.
        found.Established(StageAttestations.CommitDescriptor(context, tag));
        var export = context.Mirror.ExportTree(tag.CommitId, context.TreeDir, limits, input.ScanAhead is { } scan ? scan.Written : null, ct);

        var evidence = StageOutcome.NewEvidence();
        evidence["tag"] = tag.Name;
        evidence["tagObject"] = tag.ObjectId;
        evidence["commit"] = tag.CommitId;
        evidence["tree"] = tag.TreeId;
        evidence["files"] = export.Files.ToString(System.Globalization.CultureInfo.InvariantCulture);
        evidence["bytes"] = export.Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var fetched = new Fetched(tag, context.TreeDir, export.Files, export.Bytes);
        return Task.FromResult(new StepResult<Fetched>(fetched, new StageOutcome("sha1:" + tag.ObjectId, "sha1:" + tag.CommitId, evidence)));
    }

    public InTotoStatement Attest(DeliveryContext context, FetchInput input, StepResult<Fetched> result, DateTimeOffset finishedOn) =>
        StageAttestations.Passed(context, Name, null, [StageAttestations.TagDescriptor(context), StageAttestations.CommitDescriptor(context, result.Output.Tag)], [],
            result.Outcome, finishedOn);

    public InTotoStatement AttestFailure(DeliveryContext context, FetchInput input, StepFailure failure, DateTimeOffset finishedOn) =>
        StageAttestations.Failed(context, Name, failure, [StageAttestations.TagDescriptor(context)], [], finishedOn);
}
