using System.Globalization;
using Npgsql;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Signs checkpoints, but only over a history that extends the last checkpoint this engine signed.
/// That checkpoint is read from the checkpoint folder (<c>ledger.checkpointDir</c>, <c>latest.note</c>),
/// outside the database: someone who can only rewrite the database cannot get the engine's key
/// under a truncated or rewritten history. Every leaf logged since that checkpoint is also checked
/// (its stored hash and tree node recomputed from its envelope) before anything is signed.
/// </summary>
internal static class CheckpointSigner
{
    public const string LatestFile = "latest.note";

    /// <summary>
    /// Refusals that mean the database no longer extends what this engine signed (or holds a foreign
    /// checkpoint): a rewritten, truncated or forged history, i.e. a security event, not an outage.
    /// </summary>
    public static bool IsRefusal(string code) =>
        code is "LOG-CHECKPOINT-REGRESSED" or "LOG-CHECKPOINT-INCONSISTENT" or "LOG-LEAF-CHANGED" or "LOG-LEAF-MISSING" or "LOG-CHECKPOINT-CONFLICT";

    /// <exception cref="PipelineException">
    /// LOG-CHECKPOINT-REGRESSED (the log is smaller than the last signed checkpoint),
    /// LOG-CHECKPOINT-INCONSISTENT (history before it differs), LOG-LEAF-CHANGED / LOG-LEAF-MISSING
    /// (a leaf since it does not match its hash or node), LOG-CHECKPOINT-UNREADABLE (the kept
    /// checkpoint cannot be read or is not ours), LOG-CHECKPOINT-CONFLICT (another row holds this size).
    /// </exception>
    public static async Task<CheckpointRow> SignAsync(NpgsqlDataSource dataSource, LogSigning s, TimeProvider time, CancellationToken ct)
    {
        var previous = s.CheckpointDir is { } d ? ReadLastSigned(d, s) : null;
        CheckpointRow row;
        await using (var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false))
        await using (var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false))
        {
            await using (var lk = new NpgsqlCommand("select pg_advisory_xact_lock($1)", conn, tx))
            {
                lk.Parameters.AddWithValue(LedgerStore.AppendLockKey);
                await lk.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            long size;
            await using (var q = new NpgsqlCommand("select coalesce(max(idx) + 1, 0) from log_leaves", conn, tx))
                size = Convert.ToInt64(await q.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
            if (previous is not null) await CheckExtendsAsync(conn, tx, previous, size, ct).ConfigureAwait(false);

            var root = await TransparencyLog.ComputeAsync(conn, tx, r => MerkleProofs.Root(size, r), ct).ConfigureAwait(false);
            var note = CheckpointNote.Sign(s.Origin, size, root, s.Key, s.SignerName);
            await using (var ins = new NpgsqlCommand(
                             "insert into log_checkpoints (tree_size, root_hash, note, key_id, created_at) values ($1, $2, $3, $4, $5) on conflict (tree_size) do nothing", conn, tx))
            {
                ins.Parameters.AddWithValue(size);
                ins.Parameters.AddWithValue(root);
                ins.Parameters.AddWithValue(note);
                ins.Parameters.AddWithValue(s.Key.KeyId);
                ins.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(time.GetUtcNow()));
                await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }

            await using (var get = new NpgsqlCommand("select tree_size, root_hash, note, key_id, created_at from log_checkpoints where tree_size = $1", conn, tx))
            {
                get.Parameters.AddWithValue(size);
                await using var r = await get.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await r.ReadAsync(ct).ConfigureAwait(false);
                row = new CheckpointRow(r.GetInt64(0), (byte[])r[1], r.GetString(2), r.GetString(3), r.GetFieldValue<DateTimeOffset>(4));
            }

            // A row of this size was already there (another engine, or planted): hand out only a note that is really ours over this root.
            if (row.Note != note && !IsOurs(row.Note, s, size, root))
                throw new PipelineException("LOG-CHECKPOINT-CONFLICT", $"the stored checkpoint at size {size} is not a note signed by this engine's key over the current root; refusing to hand it out");
            await tx.CommitAsync(ct).ConfigureAwait(false);
        }

        if (s.CheckpointDir is { } dir)
        {
            Directory.CreateDirectory(dir);
            WriteAtomically(Path.Combine(dir, $"checkpoint-{row.TreeSize:D12}.note"), row.Note);
            // Concurrent engines sharing the folder: latest.note never goes back to a smaller tree.
            var latest = Path.Combine(dir, LatestFile);
            if (!File.Exists(latest) || TryParse(File.ReadAllText(latest))?.TreeSize <= row.TreeSize) WriteAtomically(latest, row.Note);
            var pub = Path.Combine(dir, $"engine-key-{s.Key.KeyId[..16]}.pub.pem");
            if (!File.Exists(pub)) WriteAtomically(pub, s.Key.Public.PublicKeyPem + "\n");
        }

        return row;
    }

    /// <summary>The log must hold at least the previous size, the same root at that size, and sound leaves after it.</summary>
    private static async Task CheckExtendsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, Checkpoint previous, long size, CancellationToken ct)
    {
        if (previous.TreeSize > size)
            throw new PipelineException("LOG-CHECKPOINT-REGRESSED",
                $"the log holds {size} entries but this engine last signed a checkpoint at size {previous.TreeSize} (checkpoint folder): entries were removed from the database; nothing was signed");
        if (previous.TreeSize > 0)
        {
            var old = await TransparencyLog.ComputeAsync(conn, tx, r => MerkleProofs.Root(previous.TreeSize, r), ct).ConfigureAwait(false);
            if (!old.AsSpan().SequenceEqual(previous.RootHash))
                throw new PipelineException("LOG-CHECKPOINT-INCONSISTENT",
                    $"the log's first {previous.TreeSize} entries no longer have the root this engine signed (checkpoint folder): history was rewritten in the database; nothing was signed");
        }

        await using var cmd = new NpgsqlCommand(
            "select l.idx, l.leaf_hash, l.envelope, n.hash from log_leaves l left join log_nodes n on n.level = 0 and n.idx = l.idx where l.idx >= $1 order by l.idx", conn, tx);
        cmd.Parameters.AddWithValue(previous.TreeSize);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var expected = previous.TreeSize;
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var idx = r.GetInt64(0);
            if (idx != expected)
                throw new PipelineException("LOG-LEAF-MISSING", $"log entry {expected} is missing (the next stored entry is {idx}); nothing was signed");
            var hash = Merkle.LeafHash((byte[])r[2]);
            if (!hash.AsSpan().SequenceEqual((byte[])r[1]) || r.IsDBNull(3) || !hash.AsSpan().SequenceEqual((byte[])r[3]))
                throw new PipelineException("LOG-LEAF-CHANGED", $"log entry {idx}: the stored envelope does not match its leaf hash or tree node; nothing was signed");
            expected++;
        }
    }

    /// <summary>The last checkpoint this engine wrote to its folder, or null when there is none yet.</summary>
    private static Checkpoint? ReadLastSigned(string dir, LogSigning s)
    {
        var path = Path.Combine(dir, LatestFile);
        string note;
        try
        {
            if (!File.Exists(path)) return null;
            note = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PipelineException("LOG-CHECKPOINT-UNREADABLE", $"cannot read the last signed checkpoint {path}: {e.Message}; nothing was signed", e);
        }

        var cp = TryParse(note) ?? throw new PipelineException("LOG-CHECKPOINT-UNREADABLE", $"{path} is not a checkpoint note; nothing was signed");
        if (cp.Origin != s.Origin)
            throw new PipelineException("LOG-CHECKPOINT-UNREADABLE", $"{path} is a checkpoint of log '{cp.Origin}', not '{s.Origin}'; nothing was signed");
        // Signed by this key: the signature must verify. Signed by an earlier key (rotation): the folder is trusted as it is.
        var ours = cp.Signatures.Where(x => x.KeyHint.AsSpan().SequenceEqual(s.Key.Public.KeyHint)).ToList();
        if (ours.Count > 0 && !ours.Any(x => s.Key.Public.Verify(System.Text.Encoding.UTF8.GetBytes(cp.SignedText), x.Signature)))
            throw new PipelineException("LOG-CHECKPOINT-UNREADABLE", $"{path} does not verify with this engine's key; nothing was signed");
        return cp;
    }

    private static bool IsOurs(string note, LogSigning s, long size, byte[] root)
    {
        try
        {
            var cp = CheckpointNote.Verify(note, new Attestations.KeyRing([s.Key.Public]), s.Origin);
            return cp.TreeSize == size && cp.RootHash.AsSpan().SequenceEqual(root);
        }
        catch (PipelineException)
        {
            return false;
        }
    }

    private static Checkpoint? TryParse(string note)
    {
        try
        {
            return Checkpoint.Parse(note);
        }
        catch (CheckupException)
        {
            return null;
        }
    }

    private static void WriteAtomically(string path, string text)
    {
        var tmp = path + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        File.WriteAllText(tmp, text);
        File.Move(tmp, path, overwrite: true);
    }
}
