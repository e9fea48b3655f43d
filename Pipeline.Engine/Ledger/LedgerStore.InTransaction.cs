using Npgsql;
using NpgsqlTypes;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Appends inside the caller's transaction: the ledger entry (and its signed log leaf) commit or
/// roll back together with the caller's own row changes, e.g. a lifecycle step and the state it
/// moves the delivery to. The append lock is a transaction-level advisory lock, so it is held until
/// the caller commits: keep the rest of that transaction short (no network calls after the append).
/// </summary>
public sealed partial class LedgerStore
{
    /// <summary>
    /// Seals <paramref name="record"/> into the chain on <paramref name="conn"/> within
    /// <paramref name="tx"/>, like <see cref="AppendAsync(StageRecord, Attestations.InTotoStatement?, CancellationToken)"/>
    /// but without committing: nothing is visible to others, and nothing remains when the caller rolls back.
    /// </summary>
    /// <exception cref="PipelineException">LEDGER-STATEMENT-MISMATCH when the statement is about another stage, verdict or delivery than the record.</exception>
    public async Task<LedgerEntry> AppendInTransactionAsync(NpgsqlConnection conn, NpgsqlTransaction tx, StageRecord record, Attestations.InTotoStatement? statement,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(conn);
        ArgumentNullException.ThrowIfNull(tx);
        return await WriteSealedAsync(conn, tx, SealItem(record, statement), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the append lock on <paramref name="tx"/> (held until it ends), chains the sealed entry
    /// onto the head, appends its log leaf and inserts its row; the caller commits.
    /// </summary>
    private async Task<LedgerEntry> WriteSealedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, SealedItem item, CancellationToken ct)
    {
        var (record, leaf, at) = item;
        var (seq, prev) = await LockAndReadChainHeadAsync(conn, tx, ct).ConfigureAwait(false);
        var hash = LedgerEntry.ComputeHash(seq, record, at, prev);
        long? logIndex = null;
        if (leaf is not null) logIndex = await TransparencyLog.AppendAsync(conn, tx, leaf, ct).ConfigureAwait(false);

        await using (var ins = new NpgsqlCommand(
                         "insert into ledger_entries(seq, delivery_id, pipeline, stage, verdict, reason_code, reason, input_digest, output_digest, evidence, recorded_at, prev_hash, entry_hash, log_index) " +
                         "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)", conn, tx))
        {
            ins.Parameters.AddWithValue(seq);
            ins.Parameters.AddWithValue(record.DeliveryId);
            ins.Parameters.AddWithValue(record.Pipeline);
            ins.Parameters.AddWithValue(record.Stage);
            ins.Parameters.AddWithValue(record.Verdict == Verdict.Passed ? "passed" : "failed");
            ins.Parameters.Add(Text(record.ReasonCode));
            ins.Parameters.Add(Text(record.Reason));
            ins.Parameters.Add(Text(record.InputDigest));
            ins.Parameters.Add(Text(record.OutputDigest));
            ins.Parameters.AddWithValue(EvidenceJson.Serialize(record.Evidence));
            ins.Parameters.AddWithValue(at);
            ins.Parameters.AddWithValue(prev);
            ins.Parameters.AddWithValue(hash);
            ins.Parameters.Add(new NpgsqlParameter { Value = (object?)logIndex ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Bigint });
            await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return new LedgerEntry(seq, record, at, prev, hash) { LogIndex = logIndex };
    }
}
