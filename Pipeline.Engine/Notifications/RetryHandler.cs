using System.Net;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using Serilog;

namespace Pipeline.Engine.Notifications;

/// <summary>
/// Retries around the webhook <see cref="HttpClient"/>: a Polly resilience pipeline (per-attempt
/// timeout, then retries with exponential backoff and jitter) as a <see cref="DelegatingHandler"/>,
/// so the sender stays a plain POST. Retried: connection failures, timeouts, 408, 429 and 5xx.
/// Not retried: other 4xx (the receiver refused the body or the signature; sending it again does not help).
/// </summary>
public sealed class RetryHandler : DelegatingHandler
{
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;

    public RetryHandler(int maxAttempts, TimeSpan baseDelay, TimeSpan attemptTimeout, TimeProvider time, ILogger log)
    {
        _pipeline = new ResiliencePipelineBuilder<HttpResponseMessage> { TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = Math.Max(0, maxAttempts - 1),
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = baseDelay,
                MaxDelay = TimeSpan.FromMinutes(5),
                ShouldHandle = new PredicateBuilder<HttpResponseMessage>()
                    .Handle<HttpRequestException>()
                    .Handle<TimeoutRejectedException>()
                    .HandleResult(IsTransient),
                OnRetry = a =>
                {
                    log.Warning("Webhook attempt {Attempt} failed ({Outcome}); retrying in {Delay} ms", a.AttemptNumber + 1,
                        a.Outcome.Exception?.GetType().Name ?? $"HTTP {(int)a.Outcome.Result!.StatusCode}", (int)a.RetryDelay.TotalMilliseconds);
                    return default;
                },
            })
            .AddTimeout(attemptTimeout)
            .Build();
    }

    public static bool IsTransient(HttpResponseMessage r) =>
        (int)r.StatusCode >= 500 || r.StatusCode is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        await _pipeline.ExecuteAsync(async (r, ct) => await base.SendAsync(r, ct).ConfigureAwait(false), request, cancellationToken).ConfigureAwait(false);
}
