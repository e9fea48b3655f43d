using Pipeline.Engine.Approvals;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Lifecycle;

public sealed partial class LifecycleService
{
    /// <summary>
    /// Records a failed promotion attempt and commits <paramref name="tx"/>: the request keeps its
    /// approval with the error (<c>CODE: message</c>, attempts + 1), and, once per failure episode, a
    /// signed failed <c>promotion:STAGE</c> statement with the code goes into the log (it is what the
    /// trace shows and what webhooks announce as <c>stage-failed</c>). An episode starts with the first
    /// failure of a request and lasts while the retries fail with the same code; a retry failing with
    /// another code (the registry answers again, but now the chain does not verify) starts a new one.
    /// The stage result does not change, so the Freigaben given stay valid for the retry.
    /// </summary>
    private async Task RecordPromotionFailureAsync(LifecycleTransaction tx, PromotionRequest request, StageDefinition? from, StageDefinition to, string code, string message,
        CancellationToken ct)
    {
        var d = tx.Current;
        var previousCode = request.LastError is { } last && last.IndexOf(':', StringComparison.Ordinal) is > 0 and var colon ? last[..colon] : null;
        if (previousCode != code)
        {
            var now = LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow());
            var step = LifecycleAttestations.Build($"promotion:{to.Name}", LifecycleAttestations.PromotionType, false, d, d.Images, tx.LastLink, Actor.Engine.Name, code, message,
                new Dictionary<string, string>
                {
                    ["fromStage"] = from?.Name ?? d.StageText,
                    ["toStage"] = to.Name,
                    ["result"] = "failed",
                    ["detail"] = $"promotion into {to.Name} failed: {code}; it stays approved and is retried on the next pass",
                }, null, now);
            var entry = await tx.AppendAsync(_ledger, step.Record, step.Statement, ct).ConfigureAwait(false);
            await tx.UpdateAsync(d with { UpdatedAt = now }, step.Link, ct).ConfigureAwait(false);
            _log.Warning("Promotion of {DeliveryId} into {Stage} failed: {Code} (recorded, log {LogIndex}); retried on the next pass", d.DeliveryId, to.Name, code, entry.LogIndex);
        }

        await tx.SetRequestStatusAsync(request.Id, PromotionRequestStatus.Approved, $"{code}: {message}", ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (previousCode != code) await CheckpointAsync(ct).ConfigureAwait(false);
    }
}
