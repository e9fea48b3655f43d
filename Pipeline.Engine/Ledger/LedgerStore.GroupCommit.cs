using Npgsql;
using NpgsqlTypes;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Group commit of one-entry appends. Appenders sign their statement themselves, then queue; one
/// leader at a time takes the queue (in arrival order, at most <see cref="MaxGroup"/> entries), writes
/// it in one transaction under the same advisory append lock as every other write (so several engines
/// still keep one gap-free order), and wakes the appenders with their entries. A failed group fails
/// exactly its own entries; when the database refused the group for the data of one of them (SQL
/// state class 23, e.g. an unknown delivery), each entry is written alone so only that one fails.
/// </summary>
public sealed partial class LedgerStore
{
    /// <summary>Most entries one group commit writes.</summary>
    internal const int MaxGroup = 256;

    private readonly Lock _queueGate = new();
    private readonly Queue<Pending> _queue = new();
    private bool _leading;

    private sealed class Pending(SealedItem item, CancellationToken ct)
    {
        public SealedItem Item { get; } = item;
        public CancellationToken Token { get; } = ct;
        public TaskCompletionSource<LedgerEntry> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// Queues the sealed entry and waits for the group that writes it. Cancellation is honoured only
    /// while the entry still waits in the queue: once a group has taken it, it is written or failed
    /// with that group, so a caller is never told "cancelled" about an entry that was recorded.
    /// </summary>
    private async Task<LedgerEntry> EnqueueAsync(SealedItem item, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var pending = new Pending(item, ct);
        bool lead;
        lock (_queueGate)
        {
            _queue.Enqueue(pending);
            lead = !_leading;
            _leading = true;
        }

        if (lead) _ = Task.Run(LeadAsync, CancellationToken.None);
        return await pending.Done.Task.ConfigureAwait(false);
    }

    /// <summary>The leader: writes groups until the queue is empty, then steps down.</summary>
    private async Task LeadAsync()
    {
        while (true)
        {
            var group = new List<Pending>();
            lock (_queueGate)
            {
                while (group.Count < MaxGroup && _queue.TryDequeue(out var p))
                {
                    if (p.Token.IsCancellationRequested) p.Done.TrySetCanceled(p.Token);
                    else group.Add(p);
                }

                if (group.Count == 0)
                {
                    _leading = false;
                    return;
                }
            }

            await WriteGroupAsync(group).ConfigureAwait(false);
        }
    }

    private async Task WriteGroupAsync(List<Pending> group)
    {
        try
        {
            var entries = await WriteSealedAsync(group.Select(p => p.Item).ToList(), CancellationToken.None).ConfigureAwait(false);
            for (var i = 0; i < group.Count; i++) group[i].Done.TrySetResult(entries[i]);
        }
        catch (PostgresException e) when (group.Count > 1 && e.SqlState.StartsWith("23", StringComparison.Ordinal))
        {
            // One entry's data was refused (e.g. its delivery does not exist): the others are fine.
            foreach (var p in group)
            {
                try
                {
                    p.Done.TrySetResult(await AppendOneByOneAsync(p.Item, CancellationToken.None).ConfigureAwait(false));
                }
                catch (Exception one)
                {
                    p.Done.TrySetException(one);
                }
            }
        }
        catch (Exception e)
        {
            foreach (var p in group) p.Done.TrySetException(e);
        }
    }

    /// <summary>One transaction and one lock round for this entry alone (the baseline, and a batch's fallback).</summary>
    private async Task<LedgerEntry> AppendOneByOneAsync(SealedItem item, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        var entry = await WriteSealedAsync(conn, tx, item, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return entry;
    }

}
