using System.Diagnostics;
using Npgsql;
using Pipeline.Checkup.Scanning;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Observability;

/// <summary>One dependency's answer: whether it is usable, what was seen (never a secret), how long the check took.</summary>
public sealed record HealthResult(string Name, bool Ok, string Detail, double Seconds);

/// <summary>The whole readiness answer: ready when every check passed.</summary>
public sealed record HealthReport(IReadOnlyList<HealthResult> Checks, DateTimeOffset At)
{
    public bool Ready => Checks.All(c => c.Ok);

    public IReadOnlyList<string> Failing => Checks.Where(c => !c.Ok).Select(c => c.Name).ToList();
}

/// <summary>
/// Readiness of the engine's dependencies, each checked with a short timeout and all at once: the ledger
/// database (<c>select 1</c>), every clamd endpoint (<c>PING</c>; the pool is usable when one answers), the internal
/// registry (<c>GET /v2/</c>), VCS B (any HTTP answer from the internal git server) and, in the daemon, the scheduler.
/// Answers are cached for <see cref="CacheFor"/> so that scrapes and probes cannot hammer the dependencies.
/// </summary>
public sealed class HealthChecks(EngineSettings settings, NpgsqlDataSource database, Func<CancellationToken, Task<bool>>? schedulerRunning, TimeProvider time)
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(2);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private HealthReport? _last;

    /// <summary>The last report, if it is younger than <see cref="CacheFor"/>, else a fresh one.</summary>
    public async Task<HealthReport> CheckAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_last is { } last && time.GetUtcNow() - last.At < CacheFor) return last;
            var checks = new List<Task<HealthResult>>
            {
                Run("database", DatabaseAsync, ct),
                Run("clamd", ClamdAsync, ct),
                Run("registry", RegistryAsync, ct),
                Run("vcs_b", VcsBAsync, ct),
            };
            if (schedulerRunning is { } running)
                checks.Add(Run("scheduler", async c => await running(c).ConfigureAwait(false)
                    ? "running"
                    : throw new PipelineException("HEALTH-SCHEDULER", "the scheduler is not running (starting, in standby or shutting down)"), ct));
            var results = await Task.WhenAll(checks).ConfigureAwait(false);
            return _last = new HealthReport(results, time.GetUtcNow());
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The last report without checking again (null before the first check).</summary>
    public HealthReport? Last => _last;

    private static async Task<HealthResult> Run(string name, Func<CancellationToken, Task<string>> check, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Timeout);
        try
        {
            var detail = await check(timeout.Token).ConfigureAwait(false);
            return new HealthResult(name, true, detail, Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return new HealthResult(name, false, $"no answer within {Timeout.TotalSeconds:0} s", Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var (code, message) = Runs.ErrorCodes.Describe(e);
            return new HealthResult(name, false, $"{code}: {message}", Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    private async Task<string> DatabaseAsync(CancellationToken ct)
    {
        await using var cmd = database.CreateCommand("select 1");
        await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return "answers";
    }

    private async Task<string> ClamdAsync(CancellationToken ct)
    {
        var endpoints = settings.Clamd.Endpoints.Select(ClamdEndpoint.Parse).ToList();
        var answers = await Task.WhenAll(endpoints.Select(async e =>
        {
            try
            {
                await new ClamdClient(e, new ClamdClientOptions()).PingAsync(ct).ConfigureAwait(false);
                return (Endpoint: e, Error: (string?)null);
            }
            catch (Exception x) when (x is ClamdException or IOException or System.Net.Sockets.SocketException)
            {
                return (Endpoint: e, Error: x.Message);
            }
        })).ConfigureAwait(false);
        var up = answers.Count(a => a.Error is null);
        var detail = string.Join("; ", answers.Select(a => $"{a.Endpoint}: {a.Error ?? "PONG"}"));
        if (up == 0) throw new PipelineException("HEALTH-CLAMD", $"no clamd endpoint answers PING ({detail})");
        return $"{up} of {answers.Length} endpoints answer ({detail})";
    }

    private async Task<string> RegistryAsync(CancellationToken ct)
    {
        var s = settings with { Registry = settings.Registry with { MaxAttempts = 1 } };
        using var client = Stages.RegistryClients.Create(s);
        await client.PingAsync(ct).ConfigureAwait(false);
        return $"{settings.Registry.Url.GetLeftPart(UriPartial.Authority)} answers /v2/";
    }

    private async Task<string> VcsBAsync(CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        using var response = await http.GetAsync(settings.InternalGit.Url, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        var status = (int)response.StatusCode;
        if (status >= 500) throw new PipelineException("HEALTH-VCS-B", $"the internal git server {settings.InternalGit.Url.GetLeftPart(UriPartial.Authority)} answers HTTP {status}");
        return $"{settings.InternalGit.Url.GetLeftPart(UriPartial.Authority)} answers (HTTP {status})";
    }
}
