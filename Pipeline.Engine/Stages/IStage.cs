namespace Pipeline.Engine.Stages;

/// <summary>
/// One step of a delivery. A stage either returns its outcome (the digests that link it to the
/// stages before and after it, and its evidence) or throws an exception with a stable code
/// (<see cref="Pipeline.Checkup.CheckupException"/>, <see cref="Pipeline.Registry.RegistryException"/>,
/// <see cref="PipelineException"/>, <see cref="Configuration.ConfigurationException"/>); the runner
/// records either in the ledger and stops at the first failure.
/// </summary>
public interface IStage
{
    /// <summary>Stable stage name recorded in the ledger: fetch, verify, scan, publish, build, push.</summary>
    string Name { get; }

    Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct);
}

/// <summary>What a passed stage records: input and output digests, and evidence (never secrets).</summary>
public sealed record StageOutcome(string? InputDigest, string? OutputDigest, IReadOnlyDictionary<string, string> Evidence)
{
    public static Dictionary<string, string> NewEvidence() => new(StringComparer.Ordinal);
}
