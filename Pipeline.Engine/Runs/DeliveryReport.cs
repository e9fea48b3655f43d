using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Runs;

/// <summary>The result of one delivery: every stage that ran with its ledger entry.</summary>
public sealed record DeliveryReport(
    Guid DeliveryId,
    string Pipeline,
    string Tag,
    DeliveryStatus Status,
    string? ReasonCode,
    string? Reason,
    IReadOnlyList<LedgerEntry> Entries,
    IReadOnlyList<string> Images,
    string? QuarantineDir)
{
    /// <summary>Which attempt at the tag this was (1 unless it retried a pending delivery).</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>For a pending delivery: when the next pass retries it.</summary>
    public DateTimeOffset? NextAttemptAt { get; init; }
}

/// <summary>The result of one pass over a pipeline's tags.</summary>
public sealed record RunReport(string Pipeline, IReadOnlyList<DeliveryReport> Deliveries, IReadOnlyList<string> Skipped)
{
    /// <summary>Tags not attempted in this pass: pending ones whose retry is not yet due, and the later tags waiting behind them.</summary>
    public IReadOnlyList<string> Waiting { get; init; } = [];

    public bool AllAccepted => Deliveries.All(d => d.Status == DeliveryStatus.Accepted);

    /// <summary>A delivery was rejected (a finding about the delivery).</summary>
    public bool AnyRejected => Deliveries.Any(d => d.Status == DeliveryStatus.Rejected);

    /// <summary>A delivery is still pending after this pass (an outage of our infrastructure; retried later).</summary>
    public bool AnyPending => Deliveries.Any(d => d.Status == DeliveryStatus.Pending) || Waiting.Count > 0;
}
