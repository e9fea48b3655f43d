using Npgsql;
using NpgsqlTypes;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Engine.Ledger;

/// <summary>How the engine signs: its key, the log's origin line, and where checkpoint files go.</summary>
public sealed record LogSigning(Attestations.EngineSigningKey Key, string Origin, string? CheckpointDir, string SignerName = CheckpointNote.DefaultSignerName);

/// <summary>
/// One leaf of the log: the canonical DSSE envelope and, for lookups only, columns copied from it
/// (an auditor never trusts those: <c>audit verify</c> checks them against the signed envelope).
/// </summary>
public sealed record LogLeaf(
    long Index,
    byte[] LeafHash,
    byte[] Envelope,
    Guid? DeliveryId,
    string Pipeline,
    string? Supplier,
    string Stage,
    string Verdict,
    string PredicateType,
    string KeyId,
    IReadOnlyList<string> Subjects,
    IReadOnlyList<string> Materials,
    DateTimeOffset RecordedAt)
{
    /// <summary>The delivery's tag name as copied from the statement (null for leaves logged before schema 4).</summary>
    public string? Tag { get; init; }
}

/// <summary>A leaf to append: the envelope and its lookup columns.</summary>
internal sealed record NewLeaf(byte[] Envelope, Guid? DeliveryId, string Pipeline, string? Supplier, string? Tag, string Stage, string Verdict, string PredicateType, string KeyId,
    string[] Subjects, string[] Materials, DateTimeOffset At);

/// <summary>A stored checkpoint row (not yet verified).</summary>
public sealed record CheckpointRow(long TreeSize, byte[] RootHash, string Note, string KeyId, DateTimeOffset CreatedAt);

/// <summary>
/// Filters for <see cref="TransparencyLog.QueryAsync"/>; null means any. <see cref="Pipelines"/>:
/// only leaves whose pipeline column is one of these (a tenant's scope; the caller re-checks the signed value).
/// </summary>
public sealed record LeafQuery(
    string? Pipeline = null,
    string? Supplier = null,
    string? Stage = null,
    string? Verdict = null,
    string? KeyId = null,
    Guid? DeliveryId = null,
    string? Digest = null,
    string? Tag = null,
    DateTimeOffset? From = null,
    DateTimeOffset? Until = null,
    long AfterIndex = -1,
    int Limit = 1000,
    IReadOnlyList<string>? Pipelines = null);

/// <summary>
/// The append-only Merkle transparency log in PostgreSQL (tables log_leaves, log_nodes,
/// log_checkpoints). Appends happen inside <see cref="LedgerStore.AppendAsync(StageRecord, Attestations.InTotoStatement?, CancellationToken)"/>
/// under the ledger's append lock; everything here reads.
/// </summary>
public sealed class TransparencyLog(NpgsqlDataSource dataSource)
{
    private const string LeafColumns = "idx, leaf_hash, envelope, delivery_id, pipeline, supplier, stage, verdict, predicate_type, key_id, subjects, materials, recorded_at, tag";

    /// <summary>Number of leaves (one past the highest index).</summary>
    public async Task<long> SizeAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select coalesce(max(idx) + 1, 0) from log_leaves");
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async Task<byte[]> RootAsync(long size, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        return await ComputeAsync(conn, null, r => MerkleProofs.Root(size, r), ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<byte[]>> InclusionProofAsync(long index, long size, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        return await ComputeAsync(conn, null, r => MerkleProofs.InclusionProof(index, size, r), ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<byte[]>> ConsistencyProofAsync(long size1, long size2, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        return await ComputeAsync(conn, null, r => MerkleProofs.ConsistencyProof(size1, size2, r), ct).ConfigureAwait(false);
    }

    public async Task<LogLeaf?> GetLeafAsync(long index, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"select {LeafColumns} from log_leaves where idx = $1");
        cmd.Parameters.AddWithValue(index);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadLeaf(r) : null;
    }

    /// <summary>Leaves in index order starting after <paramref name="afterIndex"/> (paging for the whole-log check and the API).</summary>
    public async Task<IReadOnlyList<LogLeaf>> LeavesAsync(long afterIndex, int limit, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"select {LeafColumns} from log_leaves where idx > $1 order by idx limit $2");
        cmd.Parameters.AddWithValue(afterIndex);
        cmd.Parameters.AddWithValue(limit);
        return await ReadLeavesAsync(cmd, ct).ConfigureAwait(false);
    }

    /// <summary>Leaves matching every given filter, in index order .</summary>
    public async Task<IReadOnlyList<LogLeaf>> QueryAsync(LeafQuery q, CancellationToken ct)
    {
        const string where = "idx > $1 " +
            "and ($2::text is null or pipeline = $2) and ($3::text is null or stage = $3) and ($4::text is null or verdict = $4) " +
            "and ($5::text is null or key_id = $5) and ($6::uuid is null or delivery_id = $6) and ($7::text is null or subjects @> array[$7] or materials @> array[$7]) " +
            "and ($8::timestamptz is null or recorded_at >= $8) and ($9::timestamptz is null or recorded_at < $9) " +
            "and ($10::text is null or supplier = $10) and ($12::text is null or tag = $12) and ($13::text[] is null or pipeline = any($13)) ";
        // A digest names few entries: find them through the GIN indexes first, then order. Without
        // the fence (offset 0) PostgreSQL may walk the primary key in order hoping to meet the
        // limit early, which reads the whole log when the digest is rare (~1 s at 1M entries, bench/ledger).
        await using var cmd = dataSource.CreateCommand(q.Digest is null
            ? $"select {LeafColumns} from log_leaves l where {where}order by idx limit $11"
            : $"select {LeafColumns} from (select * from log_leaves l where {where}offset 0) l order by idx limit $11");
        cmd.Parameters.AddWithValue(q.AfterIndex);
        cmd.Parameters.Add(Text(q.Pipeline));
        cmd.Parameters.Add(Text(q.Stage));
        cmd.Parameters.Add(Text(q.Verdict));
        cmd.Parameters.Add(Text(q.KeyId));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)q.DeliveryId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.Add(Text(q.Digest));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)q.From ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)q.Until ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
        cmd.Parameters.Add(Text(q.Supplier));
        cmd.Parameters.AddWithValue(q.Limit);
        cmd.Parameters.Add(Text(q.Tag));
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)q.Pipelines?.ToArray() ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        return await ReadLeavesAsync(cmd, ct).ConfigureAwait(false);
    }

    public async Task<CheckpointRow?> LatestCheckpointAsync(CancellationToken ct)
    {
        var all = await CheckpointsAsync(latestOnly: true, ct).ConfigureAwait(false);
        return all.Count == 0 ? null : all[0];
    }

    /// <summary>Every stored checkpoint, smallest tree first (or only the latest).</summary>
    public async Task<IReadOnlyList<CheckpointRow>> CheckpointsAsync(bool latestOnly, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(latestOnly
            ? "select tree_size, root_hash, note, key_id, created_at from log_checkpoints order by tree_size desc limit 1"
            : "select tree_size, root_hash, note, key_id, created_at from log_checkpoints order by tree_size");
        var list = new List<CheckpointRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
            list.Add(new CheckpointRow(r.GetInt64(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4)));
        return list;
    }

    /// <summary>Every stored node, ordered by level then index (for the whole-log check).</summary>
    public async IAsyncEnumerable<(int Level, long Index, byte[] Hash)> AllNodesAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand("select level, idx, hash from log_nodes order by level, idx");
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) yield return (r.GetInt32(0), r.GetInt64(1), (byte[])r[2]);
    }

    /// <summary>Appends a leaf and the nodes it completes; the caller holds the append lock in <paramref name="tx"/>.</summary>
    internal static async Task<long> AppendAsync(NpgsqlConnection conn, NpgsqlTransaction tx, NewLeaf leaf, CancellationToken ct)
    {
        long index;
        await using (var next = new NpgsqlCommand("select coalesce(max(idx) + 1, 0) from log_leaves", conn, tx))
            index = Convert.ToInt64(await next.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        var leafHash = Merkle.LeafHash(leaf.Envelope);
        var nodes = await ComputeAsync(conn, tx, r => MerkleProofs.NodesCompletedBy(index, leafHash, r), ct).ConfigureAwait(false);

        await using (var ins = new NpgsqlCommand(
                         $"insert into log_leaves ({LeafColumns}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)", conn, tx))
        {
            ins.Parameters.AddWithValue(index);
            ins.Parameters.AddWithValue(leafHash);
            ins.Parameters.AddWithValue(leaf.Envelope);
            ins.Parameters.Add(new NpgsqlParameter { Value = (object?)leaf.DeliveryId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            ins.Parameters.AddWithValue(leaf.Pipeline);
            ins.Parameters.Add(Text(leaf.Supplier));
            ins.Parameters.AddWithValue(leaf.Stage);
            ins.Parameters.AddWithValue(leaf.Verdict);
            ins.Parameters.AddWithValue(leaf.PredicateType);
            ins.Parameters.AddWithValue(leaf.KeyId);
            ins.Parameters.AddWithValue(leaf.Subjects);
            ins.Parameters.AddWithValue(leaf.Materials);
            ins.Parameters.AddWithValue(leaf.At);
            ins.Parameters.Add(Text(leaf.Tag));
            await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await using (var insNodes = new NpgsqlCommand("insert into log_nodes (level, idx, hash) select * from unnest($1::int[], $2::bigint[], $3::bytea[])", conn, tx))
        {
            insNodes.Parameters.AddWithValue(nodes.Select(n => n.Level).ToArray());
            insNodes.Parameters.AddWithValue(nodes.Select(n => n.Index).ToArray());
            insNodes.Parameters.AddWithValue(nodes.Select(n => n.Hash).ToArray());
            await insNodes.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        return index;
    }

    /// <summary>
    /// Appends many leaves and the nodes they complete in one go (COPY); the caller holds the append
    /// lock in <paramref name="tx"/>. The leaves get consecutive indexes from the current size; the
    /// only stored nodes read are the roots of the perfect subtrees that make up the tree so far
    /// (at most 63), everything else comes from the batch itself. Returns the first index.
    /// </summary>
    internal static async Task<long> AppendBatchAsync(NpgsqlConnection conn, NpgsqlTransaction tx, IReadOnlyList<NewLeaf> leaves, CancellationToken ct)
    {
        long start;
        await using (var next = new NpgsqlCommand("select coalesce(max(idx) + 1, 0) from log_leaves", conn, tx))
            start = Convert.ToInt64(await next.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);

        var known = new Dictionary<(int, long), byte[]>();
        var frontier = new List<(int Level, long Index)>();
        for (var level = 0; level < 63; level++)
        {
            if (((start >> level) & 1) == 1) frontier.Add((level, (start >> level) - 1));
        }

        if (frontier.Count > 0)
        {
            await using var cmd = new NpgsqlCommand(
                "select n.level, n.idx, n.hash from unnest($1::int[], $2::bigint[]) as w(level, idx) join log_nodes n on n.level = w.level and n.idx = w.idx", conn, tx);
            cmd.Parameters.AddWithValue(frontier.Select(n => n.Level).ToArray());
            cmd.Parameters.AddWithValue(frontier.Select(n => n.Index).ToArray());
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false)) known[(r.GetInt32(0), r.GetInt64(1))] = (byte[])r[2];
        }

        byte[] Read(int level, long index) => known.TryGetValue((level, index), out var h)
            ? h
            : throw new PipelineException("LOG-NODE-MISSING", $"tree node (level {level}, index {index}) is missing from the log: the stored tree was truncated or damaged");

        await using (var copy = await conn.BeginBinaryImportAsync($"copy log_leaves ({LeafColumns}) from stdin (format binary)", ct).ConfigureAwait(false))
        {
            for (var k = 0; k < leaves.Count; k++)
            {
                var l = leaves[k];
                var leafHash = Merkle.LeafHash(l.Envelope);
                foreach (var (level, index, hash) in MerkleProofs.NodesCompletedBy(start + k, leafHash, Read)) known[(level, index)] = hash;
                await copy.StartRowAsync(ct).ConfigureAwait(false);
                await copy.WriteAsync(start + k, NpgsqlDbType.Bigint, ct).ConfigureAwait(false);
                await copy.WriteAsync(leafHash, NpgsqlDbType.Bytea, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.Envelope, NpgsqlDbType.Bytea, ct).ConfigureAwait(false);
                if (l.DeliveryId is { } d) await copy.WriteAsync(d, NpgsqlDbType.Uuid, ct).ConfigureAwait(false);
                else await copy.WriteNullAsync(ct).ConfigureAwait(false);
                await copy.WriteAsync(l.Pipeline, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                if (l.Supplier is { } sup) await copy.WriteAsync(sup, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                else await copy.WriteNullAsync(ct).ConfigureAwait(false);
                await copy.WriteAsync(l.Stage, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.Verdict, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.PredicateType, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.KeyId, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.Subjects, NpgsqlDbType.Array | NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.Materials, NpgsqlDbType.Array | NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await copy.WriteAsync(l.At, NpgsqlDbType.TimestampTz, ct).ConfigureAwait(false);
                if (l.Tag is { } tag) await copy.WriteAsync(tag, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                else await copy.WriteNullAsync(ct).ConfigureAwait(false);
            }

            await copy.CompleteAsync(ct).ConfigureAwait(false);
        }

        await using (var copy = await conn.BeginBinaryImportAsync("copy log_nodes (level, idx, hash) from stdin (format binary)", ct).ConfigureAwait(false))
        {
            var frontierSet = frontier.ToHashSet();
            foreach (var ((level, index), hash) in known)
            {
                if (frontierSet.Contains((level, index))) continue;
                await copy.StartRowAsync(ct).ConfigureAwait(false);
                await copy.WriteAsync(level, NpgsqlDbType.Integer, ct).ConfigureAwait(false);
                await copy.WriteAsync(index, NpgsqlDbType.Bigint, ct).ConfigureAwait(false);
                await copy.WriteAsync(hash, NpgsqlDbType.Bytea, ct).ConfigureAwait(false);
            }

            await copy.CompleteAsync(ct).ConfigureAwait(false);
        }

        return start;
    }

    /// <summary>
    /// Runs a pure Merkle computation over stored nodes: first learns which nodes it reads, fetches
    /// them in one query, then computes. A missing node is LOG-NODE-MISSING.
    /// </summary>
    internal static async Task<T> ComputeAsync<T>(NpgsqlConnection conn, NpgsqlTransaction? tx, Func<NodeReader, T> compute, CancellationToken ct)
    {
        var needed = MerkleProofs.NodesRead(r => compute(r));
        var found = new Dictionary<(int, long), byte[]>();
        if (needed.Count > 0)
        {
            await using var cmd = new NpgsqlCommand(
                "select n.level, n.idx, n.hash from unnest($1::int[], $2::bigint[]) as w(level, idx) join log_nodes n on n.level = w.level and n.idx = w.idx", conn, tx);
            cmd.Parameters.AddWithValue(needed.Select(n => n.Level).ToArray());
            cmd.Parameters.AddWithValue(needed.Select(n => n.Index).ToArray());
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false)) found[(r.GetInt32(0), r.GetInt64(1))] = (byte[])r[2];
        }

        return compute((level, index) => found.TryGetValue((level, index), out var h)
            ? h
            : throw new PipelineException("LOG-NODE-MISSING", $"tree node (level {level}, index {index}) is missing from the log: the stored tree was truncated or damaged"));
    }

    private static async Task<IReadOnlyList<LogLeaf>> ReadLeavesAsync(NpgsqlCommand cmd, CancellationToken ct)
    {
        var list = new List<LogLeaf>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadLeaf(r));
        return list;
    }

    private static LogLeaf ReadLeaf(NpgsqlDataReader r) => new(
        r.GetInt64(0), (byte[])r[1], (byte[])r[2], r.IsDBNull(3) ? null : r.GetGuid(3), r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5), r.GetString(6), r.GetString(7),
        r.GetString(8), r.GetString(9), (string[])r[10], (string[])r[11], r.GetFieldValue<DateTimeOffset>(12)) { Tag = r.IsDBNull(13) ? null : r.GetString(13) };

    private static NpgsqlParameter Text(string? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };
}
