using Npgsql;
using NpgsqlTypes;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// The per-pipeline lock and the delivery states beyond running/accepted/rejected: pending (an
/// outage of our infrastructure, a shutdown or a crash; retried with backoff) and retried.
/// </summary>
public sealed partial class LedgerStore
{
    private const string DeliveryColumns =
        "id, pipeline, tag, tag_object_id, status, reason_code, reason, image, started_at, finished_at, attempt, next_attempt_at, retry_of, intake_state";

    /// <summary>
    /// Takes the per-pipeline lock (a PostgreSQL session advisory lock, so it holds across engine
    /// processes), or returns null when another run of the pipeline holds it.
    /// </summary>
    public async Task<PipelineLock?> TryLockPipelineAsync(string pipeline, CancellationToken ct)
    {
        var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        try
        {
            var key = BitConverter.ToInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes("pipeline:" + pipeline)), 0);
            await using var cmd = new NpgsqlCommand("select pg_try_advisory_lock($1)", conn);
            cmd.Parameters.AddWithValue(key);
            if (await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is true) return new PipelineLock(conn, pipeline, key);
        }
        catch
        {
            await conn.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        await conn.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    /// <summary>
    /// Starts attempt <paramref name="attempt"/> at a tag. When it retries a pending delivery
    /// (<paramref name="retryOf"/>), that one becomes <see cref="DeliveryStatus.Retried"/> in the same transaction.
    /// </summary>
    public async Task StartDeliveryAsync(Guid id, string pipeline, string tag, string tagObjectId, int attempt, Guid? retryOf, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        var now = LedgerEntry.TruncateToMicroseconds(time.GetUtcNow());
        await using (var ins = new NpgsqlCommand(
                         "insert into deliveries(id, pipeline, tag, tag_object_id, status, started_at, attempt, retry_of) values ($1, $2, $3, $4, 'running', $5, $6, $7)", conn, tx))
        {
            ins.Parameters.AddWithValue(id);
            ins.Parameters.AddWithValue(pipeline);
            ins.Parameters.AddWithValue(tag);
            ins.Parameters.AddWithValue(tagObjectId);
            ins.Parameters.AddWithValue(now);
            ins.Parameters.AddWithValue(attempt);
            ins.Parameters.Add(new NpgsqlParameter { Value = (object?)retryOf ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        if (retryOf is { } old)
        {
            await using var upd = new NpgsqlCommand("update deliveries set status = 'retried', next_attempt_at = null where id = $1 and status = 'pending'", conn, tx);
            upd.Parameters.AddWithValue(old);
            await upd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Records that a delivery stopped for a reason outside the delivery and is retried at <paramref name="nextAttemptAt"/>.</summary>
    public async Task MarkPendingAsync(Guid id, string reasonCode, string reason, DateTimeOffset nextAttemptAt, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "update deliveries set status = 'pending', reason_code = $2, reason = $3, next_attempt_at = $4, finished_at = $5 where id = $1");
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue(reasonCode);
        cmd.Parameters.AddWithValue(reason);
        cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(nextAttemptAt));
        cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(time.GetUtcNow()));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// An operator's explicit retry: the pending delivery <paramref name="id"/> becomes due now, so
    /// the next pass of its pipeline retries it. Returns the row, or throws <c>RETRY-NOT-PENDING</c>.
    /// </summary>
    public async Task<DeliveryRow> RetryNowAsync(Guid id, CancellationToken ct)
    {
        await using (var cmd = dataSource.CreateCommand("update deliveries set next_attempt_at = $2 where id = $1 and status = 'pending'"))
        {
            cmd.Parameters.AddWithValue(id);
            cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(time.GetUtcNow()));
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1)
                return (await GetDeliveryAsync(id, ct).ConfigureAwait(false))!;
        }

        var row = await GetDeliveryAsync(id, ct).ConfigureAwait(false)
                  ?? throw new PipelineException("RETRY-NOT-FOUND", $"no delivery {id} in the ledger database; 'pipeline ledger' shows them");
        throw new PipelineException("RETRY-NOT-PENDING",
            $"delivery {id} ({row.Pipeline} {row.Tag}) is {row.Status.ToString().ToLowerInvariant()}, not pending; only a delivery stopped by an outage can be retried" +
            (row.Status == DeliveryStatus.Rejected ? " (a rejected delivery is reprocessed after 'pipeline quarantine release')" : ""));
    }

    /// <summary>
    /// Makes a rejected delivery eligible for one more attempt after a person released it from
    /// quarantine: it becomes pending (due now), so the next pass starts a new attempt at its tag.
    /// </summary>
    public async Task ReopenRejectedAsync(Guid id, string reasonCode, string reason, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "update deliveries set status = 'pending', reason_code = $2, reason = $3, next_attempt_at = $4 where id = $1 and status = 'rejected'");
        cmd.Parameters.AddWithValue(id);
        cmd.Parameters.AddWithValue(reasonCode);
        cmd.Parameters.AddWithValue(reason);
        cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(time.GetUtcNow()));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Deliveries of a pipeline that are neither accepted nor rejected nor replaced: running or pending.</summary>
    public async Task<IReadOnlyList<DeliveryRow>> ListUnfinishedAsync(string pipeline, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select " + DeliveryColumns + " from deliveries where pipeline = $1 and status in ('running', 'pending') order by started_at, id");
        cmd.Parameters.AddWithValue(pipeline);
        var list = new List<DeliveryRow>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadDelivery(r));
        return list;
    }
}

/// <summary>
/// A pipeline's advisory lock, held by one database session. When that session dies
/// (terminated backend, failover) another engine may take the lock: <see cref="EnsureHeldAsync"/>
/// is called before every write of a delivery (ledger, VCS B, registry) so a node that lost its
/// lock stops before it writes anything further.
/// </summary>
public sealed class PipelineLock : IAsyncDisposable
{
    private readonly NpgsqlConnection _conn;
    private readonly long _key;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _lost;

    internal PipelineLock(NpgsqlConnection conn, string pipeline, long key)
    {
        _conn = conn;
        _key = key;
        Pipeline = pipeline;
    }

    public string Pipeline { get; }

    /// <summary>Throws <see cref="PipelineLockLostException"/> unless the session that took the lock still holds it.</summary>
    public async Task EnsureHeldAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_lost) throw Lost(null);
            bool held;
            try
            {
                // classid/objid are the high and low halves of the bigint key; objsubid 1 marks a bigint key.
                await using var cmd = new NpgsqlCommand(
                    "select exists(select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted " +
                    "and objsubid = 1 and classid::bigint = (($1 >> 32) & 4294967295) and objid::bigint = ($1 & 4294967295))", _conn);
                cmd.Parameters.AddWithValue(_key);
                held = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is true;
            }
            catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
            {
                _lost = true;
                throw Lost(e);
            }

            if (!held)
            {
                _lost = true;
                throw Lost(null);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private PipelineLockLostException Lost(Exception? inner) => new(
        $"the database session holding the lock of pipeline '{Pipeline}' is gone{(inner is null ? "" : $" ({inner.Message})")}; " +
        "another engine may have taken over, so this one stops without writing anything further", inner);

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_lost && _conn.FullState == System.Data.ConnectionState.Open)
            {
                await using var cmd = new NpgsqlCommand("select pg_advisory_unlock($1)", _conn);
                cmd.Parameters.AddWithValue(_key);
                await cmd.ExecuteNonQueryAsync().ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
        {
            // The session is gone, and the lock with it.
        }
        finally
        {
            await _conn.DisposeAsync().ConfigureAwait(false);
            _gate.Dispose();
        }
    }
}

/// <summary>The engine lost its pipeline lock (<c>RUN-LOCK-LOST</c>): it stops; the delivery is never recorded as rejected for it.</summary>
public sealed class PipelineLockLostException(string message, Exception? inner) : PipelineException("RUN-LOCK-LOST", message, inner);
