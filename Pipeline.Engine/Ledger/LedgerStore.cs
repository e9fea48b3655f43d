using Npgsql;
using NpgsqlTypes;

namespace Pipeline.Engine.Ledger;

/// <summary>The state of a delivery as the engine last recorded it.</summary>
public enum DeliveryStatus
{
    Running,
    Accepted,
    Rejected,

    /// <summary>Stopped by an outage of our own infrastructure (or shutdown, or a crash); retried at <see cref="DeliveryRow.NextAttemptAt"/>.</summary>
    Pending,

    /// <summary>A pending delivery that a later attempt (its own delivery row) replaced.</summary>
    Retried,
}

public sealed record DeliveryRow(
    Guid Id,
    string Pipeline,
    string Tag,
    string TagObjectId,
    DeliveryStatus Status,
    string? ReasonCode,
    string? Reason,
    string? Image,
    DateTimeOffset StartedAt,
    DateTimeOffset? FinishedAt)
{
    /// <summary>1 for the first attempt at a tag; a retry of a pending delivery counts on.</summary>
    public int Attempt { get; init; } = 1;

    /// <summary>When a pending delivery is retried by the next pass.</summary>
    public DateTimeOffset? NextAttemptAt { get; init; }

    /// <summary>The pending delivery this attempt retries.</summary>
    public Guid? RetryOf { get; init; }

    /// <summary>The last intake step it recorded (<see cref="IntakeStateMachine"/>).</summary>
    public IntakeState IntakeState { get; init; }
}

/// <summary>
/// Deliveries and the hash-chained stage ledger in PostgreSQL. Appends are serialised by an
/// advisory lock so that concurrent engines keep one gap-free order.
/// </summary>
/// <remarks>
/// With a <see cref="LogSigning"/> every appended entry is also attested: the stage's in-toto
/// statement is signed into a DSSE envelope and appended as a leaf of the Merkle transparency log
/// in the same transaction, and the entry records the leaf's index (<see cref="LedgerEntry.LogIndex"/>).
/// </remarks>
public sealed partial class LedgerStore(NpgsqlDataSource dataSource, TimeProvider time, LogSigning? signing = null)
{
    internal const long AppendLockKey = 0x5049504C_4C454447; // "PIPLLEDG"

    public static NpgsqlDataSource CreateDataSource(string connectionString, string? passwordFile)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        if (passwordFile is not null) b.Password = File.ReadAllText(passwordFile).TrimEnd('\r', '\n');
        return NpgsqlDataSource.Create(b.ConnectionString);
    }

    public Task MigrateAsync(CancellationToken ct) => LedgerSchema.MigrateAsync(dataSource, ct);

    internal NpgsqlDataSource DataSource => dataSource;

    /// <summary>The transparency log over the same database.</summary>
    public TransparencyLog Log { get; } = new(dataSource);

    /// <summary>How this store signs, or null (unsigned legacy mode: entries get no log leaf).</summary>
    public LogSigning? Signing => signing;

    /// <summary>Every delivery recorded for this tag name, first seen first.</summary>
    public async Task<IReadOnlyList<DeliveryRow>> FindDeliveriesAsync(string pipeline, string tag, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select " + DeliveryColumns + " " +
            "from deliveries where pipeline = $1 and tag = $2 order by started_at, id");
        cmd.Parameters.AddWithValue(pipeline);
        cmd.Parameters.AddWithValue(tag);
        var list = new List<DeliveryRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadDelivery(r));
        return list;
    }

    /// <summary>The highest version (by <see cref="Vcs.VersionOrder"/>) accepted for this pipeline, or null.</summary>
    public async Task<string?> LastAcceptedTagAsync(string pipeline, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select distinct tag from deliveries where pipeline = $1 and status = 'accepted'");
        cmd.Parameters.AddWithValue(pipeline);
        var tags = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) tags.Add(r.GetString(0));
        return tags.Count == 0 ? null : tags.Max(Comparer<string>.Create(Vcs.VersionOrder.Compare));
    }

    /// <summary>Every delivery of a tag name in any pipeline, first seen first.</summary>
    public async Task<IReadOnlyList<DeliveryRow>> FindDeliveriesByTagAsync(string tag, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select " + DeliveryColumns + " " +
            "from deliveries where tag = $1 order by started_at, id");
        cmd.Parameters.AddWithValue(tag);
        var list = new List<DeliveryRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadDelivery(r));
        return list;
    }

    public async Task<DeliveryRow?> GetDeliveryAsync(Guid id, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select " + DeliveryColumns + " from deliveries where id = $1");
        cmd.Parameters.AddWithValue(id);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadDelivery(r) : null;
    }

    public async Task<IReadOnlyList<DeliveryRow>> ListDeliveriesAsync(string? pipeline, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select " + DeliveryColumns + " from deliveries " +
            "where ($1::text is null or pipeline = $1) order by started_at desc limit $2");
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)pipeline ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.AddWithValue(limit);
        var list = new List<DeliveryRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadDelivery(r));
        return list;
    }

    public async Task StartDeliveryAsync(Guid id, string pipeline, string tag, string tagObjectId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "insert into deliveries(id, pipeline, tag, tag_object_id, status, started_at) values ($1, $2, $3, $4, 'running', $5)");
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue(pipeline);
        cmd.Parameters.AddWithValue(tag);
        cmd.Parameters.AddWithValue(tagObjectId);
        cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(time.GetUtcNow()));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    public async Task FinishDeliveryAsync(Guid id, DeliveryStatus status, string? reasonCode, string? reason, string? image, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "update deliveries set status = $2, reason_code = $3, reason = $4, image = $5, finished_at = $6 where id = $1");
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue(status.ToString().ToLowerInvariant());
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)reasonCode ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)reason ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)image ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(time.GetUtcNow()));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Seals <paramref name="record"/> into the chain and returns the stored entry.</summary>
    public Task<LedgerEntry> AppendAsync(StageRecord record, CancellationToken ct) => AppendAsync(record, null, ct);

    /// <summary>
    /// Seals <paramref name="record"/> into the chain and, when the store signs, appends the signed
    /// <paramref name="statement"/> (or one made from the record) to the transparency log, atomically.
    /// The statement is signed by the caller; the write joins the store's group commit
    /// (<see cref="GroupCommit"/>): concurrent appenders share one transaction under the one append lock,
    /// in arrival order, each entry still individually signed and chained.
    /// </summary>
    public async Task<LedgerEntry> AppendAsync(StageRecord record, Attestations.InTotoStatement? statement, CancellationToken ct)
    {
        var item = SealItem(record, statement);
        return GroupCommit
            ? await EnqueueAsync(item, ct).ConfigureAwait(false)
            : await AppendOneByOneAsync(item, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// True (default): concurrent one-entry appends are group-committed. False: every append takes the
    /// lock in its own transaction (the path before group commit; bench/ledger measures it as the baseline).
    /// </summary>
    public bool GroupCommit { get; init; } = true;

    /// <summary>A record ready to write: its leaf (null when the store does not sign) and its stored time.</summary>
    private sealed record SealedItem(StageRecord Record, NewLeaf? Leaf, DateTimeOffset At);

    private SealedItem SealItem(StageRecord record, Attestations.InTotoStatement? statement)
    {
        var now = time.GetUtcNow();
        if (signing is null) return new SealedItem(record, null, LedgerEntry.TruncateToMicroseconds(now));
        var (leaf, at) = Seal(signing, record, statement, now);
        return new SealedItem(record, leaf, at);
    }

    /// <summary>
    /// Appends many records in one transaction under the one append lock: the same chain, signed
    /// envelopes and gap-free log order as <see cref="AppendAsync(StageRecord, Attestations.InTotoStatement?, CancellationToken)"/>
    /// called once per record, in list order, but one round of locking and COPY instead of one per
    /// record (envelopes are signed in parallel before the lock is taken). For imports and bulk
    /// loads; a delivery appends one entry per stage as it happens. Each entry is stored with its statement's signed time (records without a statement share one).
    /// Every record's delivery must exist (<see cref="StartDeliveryAsync"/>).
    /// </summary>
    public async Task<IReadOnlyList<LedgerEntry>> AppendBatchAsync(IReadOnlyList<(StageRecord Record, Attestations.InTotoStatement? Statement)> items, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items.Count == 0) return [];
        var now = time.GetUtcNow();
        var sealedItems = new SealedItem[items.Count];
        if (signing is not null)
            Parallel.For(0, items.Count, new ParallelOptions { CancellationToken = ct }, i =>
            {
                var (leaf, at) = Seal(signing, items[i].Record, items[i].Statement, now);
                sealedItems[i] = new SealedItem(items[i].Record, leaf, at);
            });
        else
            for (var i = 0; i < items.Count; i++) sealedItems[i] = new SealedItem(items[i].Record, null, LedgerEntry.TruncateToMicroseconds(now));
        return await WriteSealedAsync(sealedItems, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes sealed items in one transaction under the append lock: their leaves and nodes, then their
    /// chained ledger rows (COPY), in list order. All or nothing.
    /// </summary>
    private async Task<IReadOnlyList<LedgerEntry>> WriteSealedAsync(IReadOnlyList<SealedItem> items, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        var (seq, prev) = await LockAndReadChainHeadAsync(conn, tx, ct).ConfigureAwait(false);

        long? firstIndex = null;
        if (signing is not null) firstIndex = await TransparencyLog.AppendBatchAsync(conn, tx, items.Select(x => x.Leaf!).ToList(), ct).ConfigureAwait(false);

        var entries = new List<LedgerEntry>(items.Count);
        await using (var copy = await conn.BeginBinaryImportAsync(
                         "copy ledger_entries (seq, delivery_id, pipeline, stage, verdict, reason_code, reason, input_digest, output_digest, evidence, recorded_at, prev_hash, entry_hash, log_index) from stdin (format binary)", ct).ConfigureAwait(false))
        {
            for (var i = 0; i < items.Count; i++)
            {
                var record = items[i].Record;
                var at = items[i].At;
                var hash = LedgerEntry.ComputeHash(seq, record, at, prev);
                long? logIndex = firstIndex + i;
                await copy.StartRowAsync(ct).ConfigureAwait(false);
                await copy.WriteAsync(seq, NpgsqlDbType.Bigint, ct).ConfigureAwait(false);
                await copy.WriteAsync(record.DeliveryId, NpgsqlDbType.Uuid, ct).ConfigureAwait(false);
                await copy.WriteAsync(record.Pipeline, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(record.Stage, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(record.Verdict == Verdict.Passed ? "passed" : "failed", NpgsqlDbType.Text, ct).ConfigureAwait(false);
                foreach (var v in new[] { record.ReasonCode, record.Reason, record.InputDigest, record.OutputDigest })
                {
                    if (v is null) await copy.WriteNullAsync(ct).ConfigureAwait(false);
                    else await copy.WriteAsync(v, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                }

                await copy.WriteAsync(EvidenceJson.Serialize(record.Evidence), NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(at, NpgsqlDbType.TimestampTz, ct).ConfigureAwait(false);
                await copy.WriteAsync(prev, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(hash, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                if (logIndex is { } li) await copy.WriteAsync(li, NpgsqlDbType.Bigint, ct).ConfigureAwait(false);
                else await copy.WriteNullAsync(ct).ConfigureAwait(false);
                entries.Add(new LedgerEntry(seq, record, at, prev, hash) { LogIndex = logIndex });
                prev = hash;
                seq++;
            }

            await copy.CompleteAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        return entries;
    }

    /// <summary>
    /// Binds the statement to the record (<see cref="LedgerBinding"/>), signs it, and returns the leaf
    /// to append and the time the row is stored with (the statement's signed time).
    /// </summary>
    /// <exception cref="PipelineException">LEDGER-STATEMENT-MISMATCH when the statement is about another stage, verdict or delivery than the record.</exception>
    private static (NewLeaf Leaf, DateTimeOffset At) Seal(LogSigning s, StageRecord record, Attestations.InTotoStatement? statement, DateTimeOffset now)
    {
        var verdict = record.Verdict == Verdict.Passed ? "passed" : "failed";
        var (bound, at) = LedgerBinding.Bind(statement ?? Attestations.StageAttestations.FromRecord(record, now), record, now);
        var facts = Attestations.StatementFacts.Of(bound);
        if (facts.Stage != record.Stage || facts.Verdict != verdict || facts.DeliveryId != record.DeliveryId.ToString("D") || facts.Pipeline != record.Pipeline)
            throw new PipelineException("LEDGER-STATEMENT-MISMATCH",
                $"the statement for {record.Stage}/{verdict} of delivery {record.DeliveryId} says {facts.Stage}/{facts.Verdict} of {facts.DeliveryId} ({facts.Pipeline}); nothing was recorded");
        var envelope = Attestations.DsseEnvelope.Sign(Attestations.DsseEnvelope.InTotoPayloadType, bound.ToJsonBytes(), s.Key).CanonicalBytes();
        return (new NewLeaf(envelope, record.DeliveryId, record.Pipeline, facts.Supplier, facts.Tag, record.Stage, verdict, bound.PredicateType, s.Key.KeyId,
            bound.Subjects.SelectMany(x => x.DigestStrings).Distinct().ToArray(), bound.Materials.SelectMany(x => x.DigestStrings).Distinct().ToArray(), at), at);
    }

    /// <summary>
    /// Signs a checkpoint of the log as it is now (size and root from stored nodes), stores it, and
    /// writes it to the checkpoint folder as <c>checkpoint-SIZE.note</c> and <c>latest.note</c>. When a
    /// checkpoint of this size exists, that one is returned (and written again). Refused, with nothing
    /// signed, when the log does not extend the last checkpoint in the folder (<see cref="CheckpointSigner"/>).
    /// </summary>
    /// <exception cref="PipelineException">LOG-NOT-SIGNING when the store has no signing key; the refusals of <see cref="CheckpointSigner.SignAsync"/>.</exception>
    public Task<CheckpointRow> CheckpointAsync(CancellationToken ct) =>
        CheckpointSigner.SignAsync(dataSource, signing ?? throw new PipelineException("LOG-NOT-SIGNING", "this ledger has no signing key configured (attestation.signingKeyFile)"), time, ct);

    /// <summary>Entries of one delivery, or the whole ledger when <paramref name="deliveryId"/> is null, in order.</summary>
    public async Task<IReadOnlyList<LedgerEntry>> ReadAsync(Guid? deliveryId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select seq, delivery_id, pipeline, stage, verdict, reason_code, reason, input_digest, output_digest, evidence, recorded_at, prev_hash, entry_hash, log_index " +
            "from ledger_entries where ($1::uuid is null or delivery_id = $1) order by seq");
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)deliveryId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        var list = new List<LedgerEntry>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var rec = new StageRecord(
                r.GetGuid(1), r.GetString(2), r.GetString(3), r.GetString(4) == "passed" ? Verdict.Passed : Verdict.Failed,
                NullableString(r, 5), NullableString(r, 6), NullableString(r, 7), NullableString(r, 8),
                EvidenceJson.Deserialize(r.GetString(9)));
            list.Add(new LedgerEntry(r.GetInt64(0), rec, r.GetFieldValue<DateTimeOffset>(10), r.GetString(11), r.GetString(12)) { LogIndex = r.IsDBNull(13) ? null : r.GetInt64(13) });
        }

        return list;
    }

    /// <summary>
    /// Recomputes the whole chain. Returns null when it is intact, otherwise a description of the
    /// first entry that does not match (changed, missing or reordered).
    /// </summary>
    public async Task<string?> VerifyChainAsync(CancellationToken ct)
    {
        var entries = await ReadAsync(null, ct).ConfigureAwait(false);
        return VerifyChain(entries);
    }

    public static string? VerifyChain(IReadOnlyList<LedgerEntry> entries)
    {
        var prev = LedgerEntry.GenesisHash;
        long expected = 1;
        foreach (var e in entries)
        {
            if (e.Sequence != expected) return $"entry {expected} is missing (found {e.Sequence} next)";
            if (e.PreviousHash != prev) return $"entry {e.Sequence} does not link to entry {e.Sequence - 1}";
            var h = LedgerEntry.ComputeHash(e.Sequence, e.Record, e.RecordedAt, e.PreviousHash);
            if (h != e.EntryHash) return $"entry {e.Sequence} was changed after it was recorded";
            prev = e.EntryHash;
            expected++;
        }

        return null;
    }

    /// <summary>
    /// Takes the append lock for this transaction (so concurrent engines keep one gap-free order)
    /// and returns the next sequence number and the hash it must link to.
    /// </summary>
    private static async Task<(long NextSequence, string PreviousHash)> LockAndReadChainHeadAsync(NpgsqlConnection conn, NpgsqlTransaction tx, CancellationToken ct)
    {
        await using (var lk = new NpgsqlCommand("select pg_advisory_xact_lock($1)", conn, tx))
        {
            lk.Parameters.AddWithValue(AppendLockKey);
            await lk.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await using var last = new NpgsqlCommand("select seq, entry_hash from ledger_entries order by seq desc limit 1", conn, tx);
        await using var r = await last.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? (r.GetInt64(0) + 1, r.GetString(1)) : (1, LedgerEntry.GenesisHash);
    }

    private static NpgsqlParameter Text(string? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static string? NullableString(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static DeliveryRow ReadDelivery(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2), r.GetString(3),
        Enum.Parse<DeliveryStatus>(r.GetString(4), ignoreCase: true),
        NullableString(r, 5), NullableString(r, 6), NullableString(r, 7),
        r.GetFieldValue<DateTimeOffset>(8), r.IsDBNull(9) ? null : r.GetFieldValue<DateTimeOffset>(9))
    {
        Attempt = r.GetInt32(10),
        NextAttemptAt = r.IsDBNull(11) ? null : r.GetFieldValue<DateTimeOffset>(11),
        RetryOf = r.IsDBNull(12) ? null : r.GetGuid(12),
        IntakeState = IntakeStateMachine.Parse(r.GetString(13)),
    };
}
