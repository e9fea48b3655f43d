namespace Pipeline.Engine.Api;

/// <summary>
/// How much of the database the audit API may use: <see cref="Concurrent"/> requests at once (and
/// as many pooled connections, <see cref="MaxPoolSize"/>), <see cref="Queued"/> more waiting; the
/// rest get 503 with <c>Retry-After</c>. The engine's own connections are never taken by auditors.
/// </summary>
public sealed record ApiLimits(int Concurrent, int Queued, int RetryAfterSeconds)
{
    public static ApiLimits Default { get; } = new(8, 32, 2);

    /// <summary>The API's own connection pool: one connection per running request, and two to spare.</summary>
    public int MaxPoolSize => Concurrent + 2;
}

/// <summary>A semaphore for running requests plus a bounded count of waiting ones.</summary>
internal sealed class ApiGate(ApiLimits limits)
{
    private readonly SemaphoreSlim _running = new(limits.Concurrent, limits.Concurrent);
    private int _waiting;

    /// <summary>A permit to release, or null when the queue is full.</summary>
    public async Task<IDisposable?> TryEnterAsync(CancellationToken ct)
    {
        if (_running.Wait(0)) return new Permit(_running);
        if (Interlocked.Increment(ref _waiting) > limits.Queued)
        {
            Interlocked.Decrement(ref _waiting);
            return null;
        }

        try
        {
            await _running.WaitAsync(ct).ConfigureAwait(false);
            return new Permit(_running);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
    }

    private sealed class Permit(SemaphoreSlim s) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) s.Release();
        }
    }
}
