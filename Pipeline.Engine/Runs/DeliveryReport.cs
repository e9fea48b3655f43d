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
    string? QuarantineDir);

/// <summary>The result of one pass over a pipeline's tags.</summary>
public sealed record RunReport(string Pipeline, IReadOnlyList<DeliveryReport> Deliveries, IReadOnlyList<string> Skipped)
{
    public bool AllAccepted => Deliveries.All(d => d.Status == DeliveryStatus.Accepted);
}
