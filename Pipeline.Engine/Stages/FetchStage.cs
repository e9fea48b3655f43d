using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Reads the annotated tag from the mirror (lightweight tags are rejected; a tag name that now
/// points at another object than when first seen is a security event) and writes the tagged tree
/// into the delivery's private folder, rejecting unsafe paths, links and oversized content.
/// </summary>
public sealed class FetchStage(ExportLimits limits) : IStage
{
    public string Name => "fetch";

    public Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        if (context.FirstSeenObjectId is { } first && first != context.Tag.ObjectId)
            throw new PipelineException("FETCH-TAG-MOVED",
                $"SECURITY: tag '{context.Tag.Name}' now points at tag object {context.Tag.ObjectId}, but it pointed at {first} when first seen; a published release tag must never change. Ask the supplier to publish a new version tag.");
        if (!context.Tag.IsAnnotated)
            throw new PipelineException("FETCH-LIGHTWEIGHT-TAG", $"tag '{context.Tag.Name}' is a lightweight tag; deliveries must be signed annotated tags (git tag -s)");

        var tag = context.Mirror.ReadTag(context.Tag.Name);
        context.Annotated = tag;
        var export = context.Mirror.ExportTree(tag.CommitId, context.TreeDir, limits, ct);

        var evidence = StageOutcome.NewEvidence();
        evidence["tag"] = tag.Name;
        evidence["tagObject"] = tag.ObjectId;
        evidence["commit"] = tag.CommitId;
        evidence["tree"] = tag.TreeId;
        evidence["files"] = export.Files.ToString(System.Globalization.CultureInfo.InvariantCulture);
        evidence["bytes"] = export.Bytes.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Task.FromResult(new StageOutcome("sha1:" + tag.ObjectId, "sha1:" + tag.CommitId, evidence));
    }
}
