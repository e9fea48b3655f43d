using System.Collections.Concurrent;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Serilog;

namespace Pipeline.Engine.Api;

/// <summary>What became of an on-demand pipeline pass started from the portal.</summary>
/// <param name="Status">running, finished or failed; or queued-in-cluster: handed to the daemons' cluster, where one node runs it.</param>
/// <param name="Deliveries">When finished: each new delivery as "tag status [code]".</param>
/// <param name="TriggerKey">When queued-in-cluster: the one-shot Quartz trigger (group.name) that one node fires.</param>
public sealed record PortalRun(Guid Id, string Pipeline, string StartedBy, DateTimeOffset StartedAt, string Status, DateTimeOffset? FinishedAt, IReadOnlyList<string> Deliveries,
    string? Code, string? Message, string? TriggerKey = null);

/// <summary>
/// On-demand pipeline passes (the Systempfleger's "transfer now"): each runs in the background
/// through <see cref="DeliveryRunner.RunOnceAsync"/>, which takes the pipeline's PostgreSQL
/// advisory lock. A pass is refused with RUN-BUSY while one runs in this process, or while any
/// process holds the pipeline's lock (probed before the pass starts). Between that probe and the
/// runner taking the lock another process may win; the pass then ends as failed with RUN-BUSY,
/// visible at <c>GET /api/portal/runs/{id}</c>. The last 100 passes are kept in memory.
/// When <c>toCluster</c> hands the pass to the daemons' Quartz cluster (it returns the
/// trigger key; null when no daemon stored the pipeline's job), this process runs nothing: the run
/// is recorded as queued-in-cluster and exactly one node runs the pass.
/// </summary>
public sealed class PortalRuns(
    Func<PipelineDefinition, CancellationToken, Task<RunReport>> run,
    Func<string, string, CancellationToken, Task<string?>>? toCluster,
    Func<string, CancellationToken, Task>? afterRun,
    LedgerStore ledger,
    TimeProvider time,
    ILogger log) : IAsyncDisposable
{
    private const int Kept = 100;
    private readonly ConcurrentDictionary<Guid, PortalRun> _runs = new();
    private readonly ConcurrentDictionary<string, Task> _active = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Hands a pass of <paramref name="definition"/> to the cluster, or else starts it in the background here.</summary>
    /// <exception cref="PipelineException">RUN-BUSY when the pipeline is running here or in another process.</exception>
    public async Task<PortalRun> StartAsync(PipelineDefinition definition, string startedBy, CancellationToken ct)
    {
        var name = definition.Name;
        var id = Guid.CreateVersion7(time.GetUtcNow());
        if (toCluster is not null && await toCluster(name, startedBy, ct).ConfigureAwait(false) is { } trigger)
        {
            var queued = new PortalRun(id, name, startedBy, time.GetUtcNow(), "queued-in-cluster", null, [], null, null, trigger);
            _runs[id] = queued;
            Trim();
            log.Information("Portal: on-demand pass {RunId} of {Pipeline} requested by {Person} handed to the cluster as trigger {Trigger}", id, name, startedBy, trigger);
            return queued;
        }

        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_active.TryAdd(name, gate.Task)) throw Busy(name);
        try
        {
            await using (var probe = await ledger.TryLockPipelineAsync(name, ct).ConfigureAwait(false))
            {
                if (probe is null) throw Busy(name);
            }
        }
        catch
        {
            _active.TryRemove(name, out _);
            throw;
        }

        var started = new PortalRun(id, name, startedBy, time.GetUtcNow(), "running", null, [], null, null);
        _runs[id] = started;
        Trim();
        log.Information("Portal: on-demand pass {RunId} of {Pipeline} started by {Person}", id, name, startedBy);
        var task = Task.Run(async () =>
        {
            try
            {
                await gate.Task.ConfigureAwait(false);
                var report = await run(definition, _stopping.Token).ConfigureAwait(false);
                if (afterRun is not null) await afterRun(name, _stopping.Token).ConfigureAwait(false);
                _runs[id] = started with
                {
                    Status = "finished", FinishedAt = time.GetUtcNow(),
                    Deliveries = report.Deliveries.Select(d => $"{d.Tag} {d.Status.ToString().ToLowerInvariant()}" + (d.ReasonCode is null ? "" : " " + d.ReasonCode)).ToList(),
                };
                log.Information("Portal: on-demand pass {RunId} of {Pipeline} finished: {Count} new deliveries", id, name, report.Deliveries.Count);
            }
            catch (Exception e)
            {
                var code = e is PipelineException pe ? pe.Code : "RUN-FAILED";
                _runs[id] = started with { Status = "failed", FinishedAt = time.GetUtcNow(), Code = code, Message = e.Message };
                log.Error("Portal: on-demand pass {RunId} of {Pipeline} failed: {Code} {Error}", id, name, code, e.Message);
            }
            finally
            {
                _active.TryRemove(name, out _);
            }
        });
        _active[name] = task;
        gate.SetResult();
        return started;
    }

    public PortalRun? Get(Guid id) => _runs.GetValueOrDefault(id);

    /// <summary>Waits until the pass has ended (for tests and shutdown); the pass as it ended.</summary>
    public async Task<PortalRun?> WaitAsync(Guid id, CancellationToken ct)
    {
        if (_runs.GetValueOrDefault(id) is not { Status: "running" } r) return _runs.GetValueOrDefault(id);
        if (_active.TryGetValue(r.Pipeline, out var task)) await task.WaitAsync(ct).ConfigureAwait(false);
        return _runs.GetValueOrDefault(id);
    }

    private static PipelineException Busy(string name) =>
        new("RUN-BUSY", $"pipeline '{name}' is already running (in this or another engine process); try again when it has finished");

    private void Trim()
    {
        foreach (var old in _runs.Values.Where(r => r.Status != "running").OrderByDescending(r => r.StartedAt).Skip(Kept)) _runs.TryRemove(old.Id, out _);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        foreach (var t in _active.Values)
        {
            try
            {
                await t.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _stopping.Dispose();
    }
}
