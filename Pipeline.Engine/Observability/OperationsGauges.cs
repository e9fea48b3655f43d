using System.Diagnostics.Metrics;
using Npgsql;

namespace Pipeline.Engine.Observability;

/// <summary>What the database says about the engine's state, read once per scrape (cached briefly).</summary>
public sealed record LedgerSnapshot(long LogSize, long LedgerEntries, DateTimeOffset? LastCheckpointAt, long LastCheckpointSize, long PendingApprovals, long PendingDeliveries);

/// <summary>
/// The state gauges of one operations server (meter <see cref="MeterName"/>, disposed with the server): ledger size,
/// checkpoint age, the queue of pending Freigaben and retries, and whether each dependency is up, from the last
/// <see cref="HealthChecks"/> report. <see cref="RefreshAsync"/> runs before each scrape; the callbacks only read.
/// </summary>
public sealed class OperationsGauges : IDisposable
{
    public const string MeterName = "Pipeline.Engine.Operations";

    private readonly Meter _meter = new(MeterName);
    private readonly NpgsqlDataSource _database;
    private readonly HealthChecks _health;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private LedgerSnapshot? _snapshot;
    private DateTimeOffset _readAt;

    public OperationsGauges(NpgsqlDataSource database, HealthChecks health, TimeProvider time)
    {
        _database = database;
        _health = health;
        _time = time;
        _meter.CreateObservableGauge("pipeline.ledger.size", () => Read(s => s.LogSize), "{entry}", "Leaves in the transparency log (every signed stage statement)");
        _meter.CreateObservableGauge("pipeline.ledger.entries", () => Read(s => s.LedgerEntries), "{entry}", "Entries in the hash-chained stage ledger");
        _meter.CreateObservableGauge("pipeline.ledger.checkpoint.age", CheckpointAge, "s", "Seconds since the newest signed checkpoint was made (absent before the first)");
        _meter.CreateObservableGauge("pipeline.ledger.checkpoint.size", () => Read(s => s.LastCheckpointSize), "{entry}", "Log size covered by the newest signed checkpoint");
        _meter.CreateObservableGauge("pipeline.approvals.pending", () => Read(s => s.PendingApprovals), "{delivery}", "Deliveries waiting for a Freigabe");
        _meter.CreateObservableGauge("pipeline.deliveries.pending", () => Read(s => s.PendingDeliveries), "{delivery}", "Deliveries left pending by an outage, waiting for a retry");
        _meter.CreateObservableGauge("pipeline.dependency.up", DependencyUp, "1", "1 when the dependency answered the last readiness check, else 0");
    }

    public async Task RefreshAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            _ = await _health.CheckAsync(ct).ConfigureAwait(false);
            if (_snapshot is not null && _time.GetUtcNow() - _readAt < HealthChecks.CacheFor) return;
            try
            {
                _snapshot = await ReadAsync(ct).ConfigureAwait(false);
            }
            catch (NpgsqlException)
            {
                _snapshot = null; // the database is down: pipeline.dependency.up says so; no stale numbers
            }

            _readAt = _time.GetUtcNow();
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<LedgerSnapshot> ReadAsync(CancellationToken ct)
    {
        await using var cmd = _database.CreateCommand("""
            select (select coalesce(max(idx) + 1, 0) from log_leaves),
                   (select coalesce(max(seq), 0) from ledger_entries),
                   (select max(created_at) from log_checkpoints),
                   (select coalesce(max(tree_size), 0) from log_checkpoints),
                   (select count(*) from lifecycle_deliveries where state = 'awaiting_approval'),
                   (select count(*) from deliveries where status = 'pending')
            """);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        return new LedgerSnapshot(r.GetInt64(0), r.GetInt64(1), r.IsDBNull(2) ? null : r.GetFieldValue<DateTimeOffset>(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5));
    }

    private IEnumerable<Measurement<long>> Read(Func<LedgerSnapshot, long> value) =>
        _snapshot is { } s ? [new Measurement<long>(value(s))] : [];

    private IEnumerable<Measurement<double>> CheckpointAge() =>
        _snapshot?.LastCheckpointAt is { } at ? [new Measurement<double>(Math.Max(0, (_time.GetUtcNow() - at).TotalSeconds))] : [];

    private IEnumerable<Measurement<int>> DependencyUp() =>
        _health.Last?.Checks.Select(c => new Measurement<int>(c.Ok ? 1 : 0, new KeyValuePair<string, object?>("dependency", c.Name))) ?? [];

    public void Dispose()
    {
        _meter.Dispose();
        _gate.Dispose();
    }
}
