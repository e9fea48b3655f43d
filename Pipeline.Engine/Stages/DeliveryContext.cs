using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Stages;

/// <summary>
/// The immutable facts of one delivery that every intake step may read: who it is, which pipeline
/// and settings, the supplier's mirror and tag, its private work folder and the clock. What a step
/// learns is not here: it is the step's typed output (<see cref="Fetched"/>, <see cref="Verified"/>…),
/// the next step's input. Nothing here is a secret.
/// </summary>
public sealed record DeliveryContext(
    Guid DeliveryId,
    PipelineDefinition Definition,
    EngineSettings Settings,
    SupplierMirror Mirror,
    TagInfo Tag,
    string WorkDir,
    TimeProvider Time)
{
    /// <summary>The delivered files, written by fetch.</summary>
    public string TreeDir => Path.Combine(WorkDir, "tree");

    /// <summary>The highest version of this pipeline accepted so far (rollback protection).</summary>
    public string? LastAcceptedTag { get; init; }
}

/// <summary>An image built from the delivery, waiting to be pushed.</summary>
public sealed record BuiltDeliveryImage(string Name, string Repository, string Tag, Pipeline.Registry.Images.BuiltImage Image, string BlobStoreDir)
{
    /// <summary>Where the base's layers already are, so the registry can mount instead of upload.</summary>
    public string? BaseRepository { get; init; }
}
