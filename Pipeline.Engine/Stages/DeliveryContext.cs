using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Everything the stages of one delivery share. Each stage reads what earlier stages set and sets
/// what later stages need; nothing here is a secret.
/// </summary>
public sealed class DeliveryContext(
    Guid deliveryId,
    PipelineDefinition definition,
    EngineSettings settings,
    SupplierMirror mirror,
    TagInfo tag,
    string workDir,
    TimeProvider time)
{
    public Guid DeliveryId { get; } = deliveryId;
    public PipelineDefinition Definition { get; } = definition;
    public EngineSettings Settings { get; } = settings;
    public SupplierMirror Mirror { get; } = mirror;
    public TagInfo Tag { get; } = tag;
    public TimeProvider Time { get; } = time;

    /// <summary>Private folder of this delivery; <see cref="TreeDir"/> holds the delivered files.</summary>
    public string WorkDir { get; } = workDir;
    public string TreeDir => Path.Combine(WorkDir, "tree");

    /// <summary>The tag object id recorded when this tag name was first seen, if it was seen before.</summary>
    public string? FirstSeenObjectId { get; init; }

    /// <summary>The highest version of this pipeline accepted so far (rollback protection).</summary>
    public string? LastAcceptedTag { get; init; }

    /// <summary>
    /// Evidence of the running stage, filled as its checks pass; the runner records it with the
    /// stage, also when a later check of the same stage fails (then it names the failed check).
    /// </summary>
    public Dictionary<string, string> StageEvidence { get; } = new(StringComparer.Ordinal);

    /// <summary>Set by fetch.</summary>
    public AnnotatedTag? Annotated { get; set; }

    /// <summary>Set by verify: every delivered file with its SHA-256.</summary>
    public ChecksumReport? Checksums { get; set; }

    /// <summary>Set by verify: the validated <c>delivery.yaml</c>.</summary>
    public DeliveryManifest? Delivery { get; set; }

    /// <summary>Set by verify: who signed the tag.</summary>
    public string? Signer { get; set; }

    /// <summary>Set by build: the images built, not yet pushed.</summary>
    public List<BuiltDeliveryImage> Images { get; } = [];

    /// <summary>Set by build: every image per platform, its index (several platforms) and SBOMs, for push and attestation.</summary>
    public IReadOnlyList<DeliveryImageBuild> Builds { get; set; } = [];

    /// <summary>Set by push: <c>registry/repository@sha256:...</c> of every pushed image.</summary>
    public List<string> PushedImages { get; } = [];

    /// <summary>The tag's own time (tagger date), used as the pinned time of everything built.</summary>
    public DateTimeOffset TagTime => Annotated?.TaggerTime?.ToUniversalTime()
                                     ?? throw new PipelineException("ENG-NO-TAG-TIME", "the tag has no tagger time");
}

/// <summary>An image built from the delivery, waiting to be pushed.</summary>
public sealed record BuiltDeliveryImage(string Name, string Repository, string Tag, Pipeline.Registry.Images.BuiltImage Image, string BlobStoreDir)
{
    /// <summary>Where the base's layers already are, so the registry can mount instead of upload.</summary>
    public string? BaseRepository { get; init; }
}
