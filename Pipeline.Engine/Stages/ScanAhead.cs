using System.Collections.Concurrent;
using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Engine.Stages;

/// <summary>
/// The scan of one delivery's files, started as each file is written by fetch (issue 12: one read
/// per file, stages overlapped): clamd reads a file while the export writes the next ones and
/// verify checks the signature and the checksums. Each file is judged exactly as the scan step
/// would (<see cref="PolicyScanner.ScanFileAheadAsync"/>); the scan step takes these verdicts
/// (<see cref="Of"/>), scans what has none, and keeps every check of the whole delivery (clamd's
/// version and signature age, counts and sizes, the digests against verify's). Nothing leaves the
/// engine: clamd is our own. Without a loadable scan policy nothing is scanned ahead, and the scan
/// step reports the policy's problem as before.
/// </summary>
public sealed class ScanAhead : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Task<FileVerdict>> _scans = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _cts;
    private readonly SemaphoreSlim _slots;
    private readonly ClamdPool _pool;
    private readonly PolicyScanner _scanner;
    private readonly string _treeDir;
    private readonly DateTimeOffset _now;
    private bool _disposed;

    private ScanAhead(DeliveryContext context, ScanPolicy policy, string profile, CancellationToken ct)
    {
        _cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _pool = ScanStep.CreatePool(context.Settings.Clamd, context.Time);
        _slots = new SemaphoreSlim(_pool.Parallelism);
        _scanner = new PolicyScanner(_pool, context.Settings.Clamd.Limits, context.Time);
        (Policy, Profile, _treeDir, _now) = (policy, profile, context.TreeDir, context.Time.GetUtcNow());
    }

    /// <summary>Ready to scan the files of <paramref name="context"/> as they are written; null when its scan policy cannot be loaded.</summary>
    public static ScanAhead? Start(DeliveryContext context, CancellationToken ct)
    {
        try
        {
            var (policy, profile) = ScanStep.LoadPolicy(context.Settings.PipelinesDir, context.Definition.Scan);
            return new ScanAhead(context, policy, profile, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return null; // an optimisation only: the scan step does the work in place and reports why it cannot
        }
    }

    /// <summary>A delivered file is written and closed: hand it to clamd (a few at a time, the pool's parallelism).</summary>
    public void Written(string relativePath)
    {
        if (_disposed || _cts.IsCancellationRequested) return;
        _scans.TryAdd(relativePath, Task.Run(() => ScanOneAsync(relativePath), CancellationToken.None));
    }

    private async Task<FileVerdict> ScanOneAsync(string relativePath)
    {
        await _slots.WaitAsync(_cts.Token).ConfigureAwait(false);
        try
        {
            return await _scanner.ScanFileAheadAsync(_treeDir, relativePath, Policy, Profile, _now, _cts.Token).ConfigureAwait(false);
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>The scan policy and profile every file is judged by: the scan step judges the whole delivery by them too.</summary>
    public ScanPolicy Policy { get; }

    /// <inheritdoc cref="Policy"/>
    public string Profile { get; }

    /// <summary>The verdict of <paramref name="relativePath"/> scanned ahead (its exception if the scan failed), or null.</summary>
    public Task<FileVerdict>? Of(string relativePath) => _scans.TryGetValue(relativePath, out var t) ? t : null;

    /// <summary>Cancels the scans still running and waits for them (their outcome no longer matters).</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        await _cts.CancelAsync().ConfigureAwait(false);
        await AheadWork.DrainAsync(_scans.Values).ConfigureAwait(false);

        _pool.Dispose();
        _slots.Dispose();
        _cts.Dispose();
    }
}
