using Npgsql;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// The intake state machine's writes: every change of <c>deliveries.intake_state</c> commits in the
/// same transaction as the ledger entry (and signed log leaf) that causes it, only from the state
/// the caller saw (a compare-and-set): a second engine cannot move a delivery behind this one's back.
/// </summary>
public sealed partial class LedgerStore
{
    /// <summary>
    /// Records a step of delivery <c>record.DeliveryId</c> and moves its intake state from
    /// <paramref name="from"/> to <paramref name="to"/>, atomically.
    /// </summary>
    /// <exception cref="IntakeTransitionException">
    /// INTAKE-TRANSITION-ILLEGAL (the machine does not allow it) or INTAKE-STATE-CONFLICT (the row is not in
    /// <paramref name="from"/>: another engine moved it, or there is no such delivery); nothing is recorded.
    /// </exception>
    public async Task<LedgerEntry> AppendStepAsync(StageRecord record, Attestations.InTotoStatement? statement, IntakeState from, IntakeState to, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(record);
        IntakeStateMachine.Ensure(record.DeliveryId, from, to);
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await MoveIntakeAsync(conn, tx, record.DeliveryId, from, to, null, ct).ConfigureAwait(false);
        var entry = await AppendInTransactionAsync(conn, tx, record, statement, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return entry;
    }

    /// <summary>
    /// The end of a delivery's intake: pushed → accepted, with status accepted and its images, in one
    /// update. Throws like <see cref="AppendStepAsync"/> when the delivery is not in state pushed.
    /// </summary>
    public async Task AcceptDeliveryAsync(Guid id, string images, CancellationToken ct)
    {
        IntakeStateMachine.Ensure(id, IntakeState.Pushed, IntakeState.Accepted);
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await MoveIntakeAsync(conn, null, id, IntakeState.Pushed, IntakeState.Accepted,
            ("status = 'accepted', reason_code = null, reason = null, image = $5, finished_at = $4", images), ct).ConfigureAwait(false);
    }

    /// <summary>The intake state of delivery <paramref name="id"/>, or null when there is no such delivery.</summary>
    public async Task<IntakeState?> GetIntakeStateAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select intake_state from deliveries where id = $1");
        cmd.Parameters.AddWithValue(id);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is string s ? IntakeStateMachine.Parse(s) : null;
    }

    private async Task MoveIntakeAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, Guid id, IntakeState from, IntakeState to, (string Set, string Image)? also, CancellationToken ct)
    {
        var now = LedgerEntry.TruncateToMicroseconds(time.GetUtcNow());
        await using (var upd = new NpgsqlCommand(
                         "update deliveries set intake_state = $3, intake_updated_at = $4" + (also is { } a ? ", " + a.Set : "") + " where id = $1 and intake_state = $2", conn, tx))
        {
            upd.Parameters.AddWithValue(id);
            upd.Parameters.AddWithValue(IntakeStateMachine.Name(from));
            upd.Parameters.AddWithValue(IntakeStateMachine.Name(to));
            upd.Parameters.AddWithValue(now);
            if (also is { } b) upd.Parameters.AddWithValue(b.Image);
            if (await upd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1) return;
        }

        await using var q = new NpgsqlCommand("select intake_state from deliveries where id = $1", conn, tx);
        q.Parameters.AddWithValue(id);
        var actual = await q.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        throw new IntakeTransitionException(IntakeStateMachine.ConflictCode, actual is null
            ? $"there is no delivery {id}; nothing was recorded"
            : $"delivery {id} is in intake state {actual}, not {IntakeStateMachine.Name(from)} as this engine expected (another engine moved it on); " +
              $"nothing was recorded for {IntakeStateMachine.Name(from)} → {IntakeStateMachine.Name(to)}");
    }
}
