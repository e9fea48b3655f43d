using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>One ledger row as shown to a person, with whether its values are proven by the signed log.</summary>
/// <param name="Proof">"signed #N" when the row is exactly the record log entry N signed (with a trusted key); otherwise the code of what failed.</param>
public sealed record CheckedEntry(LedgerEntry Entry, bool Verified, string Proof);

/// <summary>
/// The ledger rows with each one checked against the signed statement of its log leaf, so that
/// <c>pipeline ledger</c> never shows an unproven row as a fact.
/// </summary>
public static class LedgerView
{
    /// <summary>The rows of one delivery (or all), each checked: it points at a leaf, the leaf's signature verifies, and the leaf signed exactly this row.</summary>
    public static Task<IReadOnlyList<CheckedEntry>> ReadCheckedAsync(LedgerStore ledger, AuditService audit, Guid? deliveryId, CancellationToken ct) =>
        ReadCheckedAsync(ledger, audit, deliveryId, AuditScope.Everything, ct);

    /// <summary>
    /// As above, only rows of <paramref name="scope"/>'s pipelines: a proven row by its signed pipeline;
    /// an unproven row by the pipeline it claims (shown UNVERIFIED, so a tenant sees what claims to be
    /// theirs and is not proven).
    /// </summary>
    public static async Task<IReadOnlyList<CheckedEntry>> ReadCheckedAsync(LedgerStore ledger, AuditService audit, Guid? deliveryId, AuditScope scope, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var entries = (await ledger.ReadAsync(deliveryId, ct).ConfigureAwait(false)).Where(e => scope.Covers(e.Record.Pipeline)).ToList();
        var wanted = entries.Where(e => e.LogIndex is not null).Select(e => e.LogIndex!.Value).ToHashSet();
        var leaves = new Dictionary<long, LogLeaf>();
        if (wanted.Count > 0)
        {
            var after = wanted.Min() - 1;
            var last = wanted.Max();
            while (after < last)
            {
                var page = await ledger.Log.LeavesAsync(after, 10_000, ct).ConfigureAwait(false);
                if (page.Count == 0) break;
                foreach (var l in page.Where(l => wanted.Contains(l.Index))) leaves[l.Index] = l;
                after = page[^1].Index;
            }
        }

        var list = new List<CheckedEntry>(entries.Count);
        foreach (var e in entries)
        {
            list.Add(e.LogIndex is not { } li ? new CheckedEntry(e, false, "UNSIGNED (no log entry)")
                : !leaves.TryGetValue(li, out var leaf) ? new CheckedEntry(e, false, $"LEDGER-LEAF-MISSING (log entry {li} is not in the log)")
                : !audit.TryOpen(leaf, out var statement, out _, out var problem) ? new CheckedEntry(e, false, $"{problem!.Code} (log entry {li})")
                : LedgerBinding.SignedRecordDigest(statement!) != LedgerBinding.RecordDigest(e.Record, e.RecordedAt)
                    ? new CheckedEntry(e, false, $"LEDGER-LEAF-MISMATCH (the row is not what log entry {li} signed)")
                    : new CheckedEntry(e, true, $"signed #{li}"));
        }

        return list;
    }
}
