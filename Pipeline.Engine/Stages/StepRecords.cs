using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Fetch's input: the tag as listed, the tag object recorded when this name was first seen (if it
/// was), and the scan the runner started to take each file as soon as it is written (<see cref="Stages.ScanAhead"/>).
/// </summary>
public sealed record FetchInput(TagInfo Tag, string? FirstSeenObjectId, ScanAhead? ScanAhead = null);

/// <summary>Fetch's output: the annotated tag read from the mirror and its tree, written to <see cref="TreeDir"/>.</summary>
public sealed record Fetched(AnnotatedTag Tag, string TreeDir, long Files, long Bytes)
{
    /// <summary>The tag's own time (tagger date), the pinned time of everything built.</summary>
    public DateTimeOffset TagTime => Tag.TaggerTime?.ToUniversalTime()
                                     ?? throw new PipelineException("ENG-NO-TAG-TIME", "the tag has no tagger time");
}

/// <summary>Verify's output: who signed, every delivered file with its digest, the validated <c>delivery.yaml</c>.</summary>
public sealed record Verified(Fetched Fetched, string Signer, ChecksumReport Checksums, DeliveryManifest Delivery)
{
    public AnnotatedTag Tag => Fetched.Tag;
}

/// <summary>Scan's input: the verified delivery, and the verdicts of the files scanned as they were written (<see cref="Stages.ScanAhead"/>).</summary>
public sealed record ScanInput(Verified Verified, ScanAhead? Ahead = null);

/// <summary>Scan's output: the digest of the accepted verdict.</summary>
public sealed record Scanned(Verified Verified, string VerdictDigest)
{
    public AnnotatedTag Tag => Verified.Tag;
}

/// <summary>Publish's output: the internal repository (VCS B) the tag was pushed to.</summary>
public sealed record Published(Scanned Scanned, Uri Repository)
{
    public Verified Verified => Scanned.Verified;
    public AnnotatedTag Tag => Scanned.Tag;
}

/// <summary>
/// Build's input: the published delivery, and the image work the runner started ahead of the step
/// (<see cref="ImageAhead"/>; without it the step builds in place).
/// </summary>
public sealed record BuildInput(Published Published, ImageAhead? Ahead = null)
{
    public Verified Verified => Published.Verified;
    public AnnotatedTag Tag => Published.Tag;
}

/// <summary>Build's output: the images built (per platform), with their indexes and SBOMs; nothing pushed yet.</summary>
public sealed record Built(Published Published, IReadOnlyList<BuiltDeliveryImage> Images, IReadOnlyList<DeliveryImageBuild> Builds)
{
    public Verified Verified => Published.Verified;
    public AnnotatedTag Tag => Published.Tag;
}

/// <summary>
/// Push's input: the built images, and the blob uploads the runner started beside the publish
/// (<see cref="ImageAhead"/>; without them the step uploads in place).
/// </summary>
public sealed record PushInput(Built Built, ImageAhead? Ahead = null)
{
    public Verified Verified => Built.Verified;
    public AnnotatedTag Tag => Built.Tag;
    public IReadOnlyList<BuiltDeliveryImage> Images => Built.Images;
    public IReadOnlyList<DeliveryImageBuild> Builds => Built.Builds;
}

/// <summary>Push's output: <c>registry/repository@sha256:…</c> of every pushed image (or index).</summary>
public sealed record Pushed(Built Built, IReadOnlyList<string> References)
{
    public AnnotatedTag Tag => Built.Tag;
}
