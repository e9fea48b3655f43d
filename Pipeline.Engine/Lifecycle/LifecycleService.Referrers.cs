using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Lifecycle;

public sealed partial class LifecycleService
{
    /// <summary>
    /// Attaches the promotion's signed statement to the promoted images in the target stage
    /// (<see cref="PromotionStep.AttachStatementAsync"/>). After the commit, like the intake's
    /// attestations: a failure is logged (ATT-ATTACH-FAILED), never undoes the promotion; the log is
    /// the record auditors verify against.
    /// </summary>
    private async Task AttachPromotionStatementAsync(StageDefinition to, IReadOnlyList<DeliveryImage> images, LedgerEntry entry, CancellationToken ct)
    {
        if (entry.LogIndex is not { } index) return;
        try
        {
            var leaf = await _ledger.Log.GetLeafAsync(index, ct).ConfigureAwait(false)
                       ?? throw new PipelineException("LOG-LEAF-MISSING", $"log entry {index} of {entry.Record.Stage} is not in the log");
            var attached = await _promotion.AttachStatementAsync(to, images, leaf.Stage, index, leaf.PredicateType, leaf.Envelope, ct).ConfigureAwait(false);
            _log.Information("Attached the {Step} statement (log {LogIndex}) to {Images}: {Referrers}", leaf.Stage, index, images.Select(i => i.Reference), attached.Values);
        }
        catch (Exception e) when (e is Pipeline.Registry.RegistryException or PipelineException or HttpRequestException or IOException)
        {
            _log.Error("ATT-ATTACH-FAILED: could not attach the {Step} statement to the images in {Stage}: {Error}; it is in the transparency log ('pipeline audit export')",
                entry.Record.Stage, to.Name, e.Message);
        }
    }
}
