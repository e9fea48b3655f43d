namespace Pipeline.Checkup.Scanning;

/// <summary>How a <see cref="ClamdPool"/> spreads and retries scans.</summary>
public sealed record ClamdPoolOptions
{
    /// <summary>How many streams are scanned at the same time over all endpoints.</summary>
    public int Parallelism { get; init; } = 4;

    /// <summary>How long an endpoint that failed stays out of the pool before it is tried again.</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// For unix:// endpoints, pass the open file to clamd (FILDES) instead of copying its bytes through
    /// the socket (INSTREAM). clamd then reads exactly the file this process opened.
    /// </summary>
    public bool PassFileDescriptors { get; init; } = true;

    /// <summary>
    /// Scan over long-lived IDSESSION connections (several scans pipelined per connection, clamd runs them on its
    /// thread pool) instead of one connection per file. Default true.
    /// </summary>
    public bool UseSessions { get; init; } = true;

    /// <summary>How many IDSESSION connections each endpoint gets (scans are spread over them by load). Default 2.</summary>
    public int SessionsPerEndpoint { get; init; } = 2;

    /// <summary>Timeouts of each connection.</summary>
    public ClamdClientOptions Client { get; init; } = new();
}

/// <summary>Health of one endpoint as the pool sees it.</summary>
public sealed record ClamdEndpointHealth(ClamdEndpoint Endpoint, bool Healthy, DateTimeOffset? RetryAt, string? LastError);

/// <summary>
/// A pool over one or more clamd endpoints with a bounded number of parallel scans. Scans go round
/// robin to healthy endpoints; an endpoint that cannot be reached, times out or drops a stream
/// without answering is taken out for <see cref="ClamdPoolOptions.RetryAfter"/> and the stream is
/// sent again to the next healthy one. With no healthy endpoint left the scan fails closed with
/// <see cref="ClamdErrors.NoHealthyEndpoint"/>: nothing is ever reported clean without a verdict.
/// </summary>
public sealed class ClamdPool : IDisposable, IAsyncDisposable
{
    private readonly ClamdSession?[][] _sessions;
    private readonly SemaphoreSlim[] _opening;
    private readonly ClamdClient[] _clients;
    private readonly DateTimeOffset?[] _downUntil;
    private readonly string?[] _lastError;
    private readonly SemaphoreSlim _slots;
    private readonly TimeProvider _time;
    private readonly ClamdPoolOptions _options;
    private readonly Lock _gate = new();
    private int _next;

    public ClamdPool(IReadOnlyList<ClamdEndpoint> endpoints, ClamdPoolOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(options);
        if (endpoints.Count == 0) throw new ClamdException(ClamdErrors.BadEndpoint, "At least one clamd endpoint is needed.", false);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Parallelism, 1);
        _options = options;
        _time = time ?? throw new ArgumentNullException(nameof(time));
        _clients = endpoints.Select(e => new ClamdClient(e, options.Client)).ToArray();
        _downUntil = new DateTimeOffset?[_clients.Length];
        _lastError = new string?[_clients.Length];
        _slots = new SemaphoreSlim(options.Parallelism, options.Parallelism);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.SessionsPerEndpoint, 1);
        _sessions = _clients.Select(_ => new ClamdSession?[options.SessionsPerEndpoint]).ToArray();
        _opening = _clients.Select(_ => new SemaphoreSlim(1, 1)).ToArray();
    }

    public int Parallelism => _options.Parallelism;

    /// <summary>Current view of every endpoint.</summary>
    public IReadOnlyList<ClamdEndpointHealth> Health()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            return _clients.Select((c, i) => new ClamdEndpointHealth(c.Endpoint, _downUntil[i] is not { } d || d <= now, _downUntil[i], _lastError[i])).ToList();
        }
    }

    /// <summary>The VERSION of a healthy endpoint (all endpoints of a pool are expected to run the same engine and databases).</summary>
    public Task<string> VersionAsync(CancellationToken ct) => RunAsync((c, t) => c.VersionAsync(t), ct);

    /// <summary>STATS of every endpoint that answers (for operators; unreachable ones are left out and marked down).</summary>
    public async Task<IReadOnlyList<(ClamdEndpoint Endpoint, ClamdStats Stats)>> StatsAsync(CancellationToken ct)
    {
        var list = new List<(ClamdEndpoint, ClamdStats)>();
        for (var i = 0; i < _clients.Length; i++)
        {
            try
            {
                list.Add((_clients[i].Endpoint, await _clients[i].StatsAsync(ct).ConfigureAwait(false)));
            }
            catch (ClamdException e) when (e.IsTransient)
            {
                MarkDown(i, e.Message);
            }
        }
        return list;
    }

    /// <summary>
    /// Scans the stream that <paramref name="open"/> returns (called again for each retry on another endpoint).
    /// Returns clamd's verdict and which endpoint gave it.
    /// </summary>
    public Task<(ClamdScanResult Result, ClamdEndpoint Endpoint)> ScanAsync(Func<Stream> open, CancellationToken ct) => ScanAsync(open, null, ct);

    /// <summary>True when at least one endpoint takes open files (FILDES) instead of streams.</summary>
    public bool CanPassFileDescriptors => _options.PassFileDescriptors && _clients.Any(c => c.Endpoint.IsUnixSocket);

    /// <summary>
    /// Scans an open file: passed as a descriptor to unix:// endpoints (when <see cref="ClamdPoolOptions.PassFileDescriptors"/>),
    /// else streamed from <paramref name="open"/>. Retries on the next healthy endpoint like <see cref="ScanAsync(Func{Stream}, CancellationToken)"/>.
    /// </summary>
    public async Task<(ClamdScanResult Result, ClamdEndpoint Endpoint)> ScanAsync(Func<Stream> open, Microsoft.Win32.SafeHandles.SafeFileHandle? file, CancellationToken ct)
    {
        var answer = await ScanOnAnyAsync(open, file, ct).ConfigureAwait(false);
        ClamdMetrics.Scanned(answer.Endpoint, answer.Result.Verdict);
        return answer;
    }

    private async Task<(ClamdScanResult Result, ClamdEndpoint Endpoint)> ScanOnAnyAsync(Func<Stream> open, Microsoft.Win32.SafeHandles.SafeFileHandle? file, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(open);
        await _slots.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var tried = new HashSet<int>();
            while (true)
            {
                var i = Pick(tried);
                tried.Add(i);
                var client = _clients[i];
                ClamdScanResult result;
                try
                {
                    if (_options.UseSessions)
                    {
                        result = await ScanInSessionAsync(i, open, file, ct).ConfigureAwait(false);
                        return (result, client.Endpoint);
                    }
                    if (file is not null && _options.PassFileDescriptors && client.Endpoint.IsUnixSocket)
                    {
                        result = await client.ScanFileDescriptorAsync(file, ct).ConfigureAwait(false);
                    }
                    else
                    {
                        var stream = open();
                        await using (stream.ConfigureAwait(false))
                            result = await client.ScanAsync(stream, ct).ConfigureAwait(false);
                    }
                }
                catch (ClamdException e) when (e.IsTransient)
                {
                    MarkDown(i, e.Message);
                    continue;
                }

                // A stream dropped without any answer: is clamd still there? If not, take it out and go elsewhere.
                if (result.Verdict == ClamdVerdict.Error && result.RawReply.StartsWith("connection closed by clamd", StringComparison.Ordinal))
                {
                    try
                    {
                        await client.PingAsync(ct).ConfigureAwait(false);
                    }
                    catch (ClamdException e) when (e.IsTransient)
                    {
                        MarkDown(i, result.RawReply + "; then " + e.Message);
                        continue;
                    }
                }

                return (result, client.Endpoint);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// One scan on a session of endpoint <paramref name="i"/>. A session that drops (or times out) before answering
    /// is replaced and the scan sent again once on a fresh one; if that drops too and clamd still answers PING,
    /// the file gets an <see cref="ClamdVerdict.Error"/> verdict (never clean); if clamd is gone, the transient
    /// exception makes the caller take the endpoint out. Protocol violations (non-transient) abort the scan.
    /// </summary>
    private async Task<ClamdScanResult> ScanInSessionAsync(int i, Func<Stream> open, Microsoft.Win32.SafeHandles.SafeFileHandle? file, CancellationToken ct)
    {
        ClamdException? dropped = null;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var session = await GetSessionAsync(i, ct).ConfigureAwait(false);
            try
            {
                if (file is not null && _options.PassFileDescriptors && session.Endpoint.IsUnixSocket)
                    return await session.ScanFileDescriptorAsync(file, ct).ConfigureAwait(false);
                var stream = open();
                await using (stream.ConfigureAwait(false))
                    return await session.ScanAsync(stream, ct).ConfigureAwait(false);
            }
            catch (ClamdException e) when (e.IsTransient)
            {
                Retire(i, session);
                dropped = e;
            }
        }
        // Dropped twice without an answer: is clamd still there? (A transient failure here takes the endpoint out.)
        await _clients[i].PingAsync(ct).ConfigureAwait(false);
        return new ClamdScanResult(ClamdVerdict.Error, null, $"connection closed by clamd without an answer, twice, on fresh sessions ({dropped!.Message})");
    }

    /// <summary>The least busy open session of endpoint <paramref name="i"/>, opening one when a slot is free or dead.</summary>
    private async Task<ClamdSession> GetSessionAsync(int i, CancellationToken ct)
    {
        var slots = _sessions[i];
        ClamdSession? best = null;
        var free = -1;
        lock (_gate)
        {
            for (var k = 0; k < slots.Length; k++)
            {
                var s = slots[k];
                if (s is null || s.IsFaulted) { if (free < 0) free = k; continue; }
                if (best is null || s.InFlight < best.InFlight) best = s;
            }
            if (best is not null && (best.InFlight == 0 || free < 0)) return best;
        }
        await _opening[i].WaitAsync(ct).ConfigureAwait(false);
        try
        {
            lock (_gate)
            {
                free = Array.FindIndex(slots, s => s is null || s.IsFaulted);
                if (free < 0) return slots.Where(s => s is not null).MinBy(s => s!.InFlight)!;
            }
            var opened = await ClamdSession.OpenAsync(_clients[i].Endpoint, _options.Client, ct).ConfigureAwait(false);
            ClamdSession? old;
            lock (_gate)
            {
                old = slots[free];
                slots[free] = opened;
            }
            if (old is not null) _ = old.DisposeAsync().AsTask();
            return opened;
        }
        finally
        {
            _opening[i].Release();
        }
    }

    private void Retire(int i, ClamdSession session)
    {
        lock (_gate)
        {
            var k = Array.IndexOf(_sessions[i], session);
            if (k >= 0) _sessions[i][k] = null;
        }
        _ = session.DisposeAsync().AsTask();
    }

    private async Task<T> RunAsync<T>(Func<ClamdClient, CancellationToken, Task<T>> call, CancellationToken ct)
    {
        var tried = new HashSet<int>();
        while (true)
        {
            var i = Pick(tried);
            tried.Add(i);
            try
            {
                return await call(_clients[i], ct).ConfigureAwait(false);
            }
            catch (ClamdException e) when (e.IsTransient)
            {
                MarkDown(i, e.Message);
            }
        }
    }

    /// <summary>Next healthy endpoint not yet tried for this scan; endpoints whose retry time has come count as healthy again.</summary>
    private int Pick(HashSet<int> tried)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            for (var k = 0; k < _clients.Length; k++)
            {
                var i = (_next + k) % _clients.Length;
                if (tried.Contains(i)) continue;
                if (_downUntil[i] is { } d && d > now) continue;
                _next = (i + 1) % _clients.Length;
                return i;
            }

            var why = string.Join("; ", _clients.Select((c, i) => $"{c.Endpoint}: {_lastError[i] ?? "not tried"}"));
            throw new ClamdException(ClamdErrors.NoHealthyEndpoint,
                $"No healthy clamd endpoint is left ({why}). Nothing is accepted unscanned; start clamd or fix 'clamd.endpoints', then run again.", true);
        }
    }

    private void MarkDown(int i, string error)
    {
        lock (_gate)
        {
            _downUntil[i] = _time.GetUtcNow() + _options.RetryAfter;
            _lastError[i] = error;
        }

        ClamdMetrics.EndpointDown(_clients[i].Endpoint);
    }

    /// <summary>Ends every open session (<c>zEND</c>) and closes it.</summary>
    public async ValueTask DisposeAsync()
    {
        List<ClamdSession> open;
        lock (_gate)
        {
            open = _sessions.SelectMany(s => s).OfType<ClamdSession>().ToList();
            foreach (var s in _sessions) Array.Clear(s);
        }
        foreach (var s in open) await s.DisposeAsync().ConfigureAwait(false);
        Dispose();
    }

    public void Dispose()
    {
        List<ClamdSession> open;
        lock (_gate)
        {
            open = _sessions.SelectMany(s => s).OfType<ClamdSession>().ToList();
            foreach (var s in _sessions) Array.Clear(s);
        }
        foreach (var s in open) s.DisposeAsync().AsTask().Wait(TimeSpan.FromSeconds(3));
        _slots.Dispose();
        foreach (var o in _opening) o.Dispose();
    }
}
