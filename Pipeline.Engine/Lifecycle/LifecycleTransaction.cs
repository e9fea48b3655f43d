using Npgsql;
using NpgsqlTypes;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// One change of one delivery's lifecycle, under its row lock. Commit or dispose (rolls back).
/// </summary>
public sealed class LifecycleTransaction : IAsyncDisposable
{
    private readonly NpgsqlConnection _conn;
    private readonly NpgsqlTransaction _tx;

    internal LifecycleTransaction(NpgsqlConnection conn, NpgsqlTransaction tx, DeliveryLifecycle current, string lastLink)
    {
        _conn = conn;
        _tx = tx;
        Current = current;
        LastLink = lastLink;
    }

    /// <summary>The row as locked.</summary>
    public DeliveryLifecycle Current { get; private set; }

    /// <summary>The digest linking the delivery's latest lifecycle statement (materials of the next one).</summary>
    public string LastLink { get; private set; }

    /// <summary>Writes <paramref name="next"/> (version + 1); fails with LC-CONCURRENT-CHANGE when the row changed since it was locked.</summary>
    public async Task<DeliveryLifecycle> UpdateAsync(DeliveryLifecycle next, string lastLink, CancellationToken ct)
    {
        var stored = next with { Version = Current.Version + 1 };
        await using var cmd = new NpgsqlCommand(
            "update lifecycle_deliveries set state = $4, stage_index = $5, stage = $6, target_stage = $7, stage_result = $8, stage_result_digest = $9, stage_result_at = $10, " +
            "images = $11, reason_code = $12, reason = $13, version = $14, updated_at = $15, last_link = $16 where delivery_id = $1 and pipeline = $2 and tag = $3 and version = $17", _conn, _tx);
        LifecycleStore.AddLifecycle(cmd.Parameters, stored, lastLink);
        cmd.Parameters.AddWithValue(Current.Version);
        if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) != 1)
            throw new LifecycleException(LifecycleErrors.Concurrent, $"delivery {Current.DeliveryId} changed while this action ran; reload and try again");
        Current = stored;
        LastLink = lastLink;
        return stored;
    }

    /// <summary>
    /// Appends a lifecycle statement to the ledger within this transaction: the entry, its log leaf
    /// and this transaction's row changes commit together or not at all.
    /// </summary>
    public Task<Ledger.LedgerEntry> AppendAsync(Ledger.LedgerStore ledger, Ledger.StageRecord record, Attestations.InTotoStatement statement, CancellationToken ct) =>
        ledger.AppendInTransactionAsync(_conn, _tx, record, statement, ct);

    public async Task<PromotionRequest?> ActiveRequestAsync(CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"select {LifecycleStore.RequestColumns} from lifecycle_requests where delivery_id = $1 and status in ('open', 'approved')", _conn, _tx);
        cmd.Parameters.AddWithValue(Current.DeliveryId);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? LifecycleStore.ReadRequest(r) : null;
    }

    public async Task InsertRequestAsync(PromotionRequest q, int toIndex, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "insert into lifecycle_requests (id, delivery_id, from_stage, to_stage, to_index, requested_by, requested_at, status) values ($1, $2, $3, $4, $5, $6, $7, $8)", _conn, _tx);
        cmd.Parameters.AddWithValue(q.Id);
        cmd.Parameters.AddWithValue(q.DeliveryId);
        cmd.Parameters.Add(LifecycleStore.Text(q.FromStage));
        cmd.Parameters.AddWithValue(q.ToStage);
        cmd.Parameters.AddWithValue(toIndex);
        cmd.Parameters.AddWithValue(q.RequestedBy);
        cmd.Parameters.AddWithValue(q.RequestedAt);
        cmd.Parameters.AddWithValue(q.Status.ToString().ToLowerInvariant());
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async Task SetRequestStatusAsync(Guid requestId, PromotionRequestStatus status, string? lastError, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            "update lifecycle_requests set status = $2, last_error = $3, attempts = attempts + case when $3::text is null then 0 else 1 end where id = $1", _conn, _tx);
        cmd.Parameters.AddWithValue(requestId);
        cmd.Parameters.AddWithValue(status.ToString().ToLowerInvariant());
        cmd.Parameters.Add(LifecycleStore.Text(lastError));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<ApprovalRecord>> ApprovalsAsync(Guid requestId, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"select {LifecycleStore.ApprovalColumns} from lifecycle_approvals where request_id = $1 order by given_at, id", _conn, _tx);
        cmd.Parameters.AddWithValue(requestId);
        var list = new List<ApprovalRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(LifecycleStore.ReadApproval(r));
        return list;
    }

    public async Task InsertApprovalAsync(ApprovalRecord a, byte[]? statement, string? signature, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"insert into lifecycle_approvals ({LifecycleStore.ApprovalColumns}, statement, signature) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)", _conn, _tx);
        var p = cmd.Parameters;
        p.AddWithValue(a.Id);
        p.AddWithValue(a.DeliveryId);
        p.AddWithValue(a.RequestId);
        p.Add(LifecycleStore.Text(a.FromStage));
        p.AddWithValue(a.ToStage);
        p.AddWithValue(a.Approver);
        p.Add(LifecycleStore.Text(a.EnteredBy));
        p.AddWithValue(a.Decision == ApprovalDecision.Approve ? "approve" : "reject");
        p.Add(LifecycleStore.Text(a.Comment));
        p.AddWithValue(a.GivenAt);
        p.AddWithValue(string.Join(' ', a.Digests));
        p.AddWithValue(a.StageResultDigest);
        p.Add(LifecycleStore.Text(a.SignatureKey));
        p.AddWithValue(a.Channel);
        p.Add(new NpgsqlParameter { Value = (object?)a.LogIndex ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
        p.Add(LifecycleStore.Text(a.VoidReason));
        p.Add(new NpgsqlParameter { Value = (object?)statement ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bytea });
        p.Add(LifecycleStore.Text(signature));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Marks every still-counting approval of the delivery void (withdrawn, superseded, rejected).</summary>
    public async Task VoidApprovalsAsync(string reason, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand("update lifecycle_approvals set void_reason = $2 where delivery_id = $1 and void_reason is null", _conn, _tx);
        cmd.Parameters.AddWithValue(Current.DeliveryId);
        cmd.Parameters.AddWithValue(reason);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        await using var req = new NpgsqlCommand("update lifecycle_requests set status = 'void' where delivery_id = $1 and status in ('open', 'approved')", _conn, _tx);
        req.Parameters.AddWithValue(Current.DeliveryId);
        await req.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public Task CommitAsync(CancellationToken ct) => _tx.CommitAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _tx.DisposeAsync().ConfigureAwait(false);
        await _conn.DisposeAsync().ConfigureAwait(false);
    }
}
