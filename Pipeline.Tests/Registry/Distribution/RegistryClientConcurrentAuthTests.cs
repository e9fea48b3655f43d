using System.Net;
using System.Text;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Distribution;

/// <summary>
/// Requests sent at the same time before the registry's first challenge was answered (a parallel
/// image push) each get a 401; each must be repeated with the credentials or the token one of them
/// fetched, not given up as refused.
/// </summary>
public class RegistryClientConcurrentAuthTests
{
    private static readonly Uri Base = new("http://127.0.0.1:5998");

    private static RegistryClient Make(FakeRegistryHandler handler, RegistryCredentials? creds) =>
        new(new RegistryEndpoint(Base, creds), new RegistryClientOptions { MaxAttempts = 1, RetryBaseDelay = TimeSpan.Zero }, new HttpClient(handler));

    /// <summary>Two blob checks whose first, unauthenticated requests both reach the registry before either is answered.</summary>
    private static async Task<bool[]> TwoChecksRacingAsync(RegistryClient client)
    {
        var a = Task.Run(() => client.BlobExistsAsync("team/app", Digest.Compute("a"u8)));
        var b = Task.Run(() => client.BlobExistsAsync("team/app", Digest.Compute("b"u8)));
        var all = Task.WhenAll(a, b);
        Assert.That(await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(30))), Is.SameAs(all), "the checks did not finish");
        return await all;
    }

    [Test]
    public async Task Concurrent_requests_each_repeat_with_basic_credentials_after_the_challenge()
    {
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:s3cret"));
        using var bothArrived = new Barrier(2);
        var handler = new FakeRegistryHandler(req =>
        {
            if (req.Headers.Authorization?.ToString() == basic) return new HttpResponseMessage(HttpStatusCode.OK);
            Assert.That(bothArrived.SignalAndWait(TimeSpan.FromSeconds(20)), Is.True, "both unauthenticated requests reach the registry");
            var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
            r.Headers.WwwAuthenticate.ParseAdd("Basic realm=\"registry\"");
            return r;
        });
        using var client = Make(handler, new RegistryCredentials("ci", "s3cret"));
        Assert.That(await TwoChecksRacingAsync(client), Is.EqualTo(new[] { true, true }));
        Assert.That(handler.Requests.Count(r => r.Authorization == basic), Is.EqualTo(2), "each request was repeated with the credentials");
    }

    [Test]
    public async Task Concurrent_requests_share_the_token_one_of_them_fetched()
    {
        using var bothArrived = new Barrier(2);
        var tokensIssued = 0;
        var handler = new FakeRegistryHandler(req =>
        {
            if (req.RequestUri!.AbsolutePath == "/token")
            {
                var n = Interlocked.Increment(ref tokensIssued);
                return FakeRegistryHandler.Json(HttpStatusCode.OK, $"{{\"token\":\"tok-{n}\"}}");
            }
            if (req.Headers.Authorization?.ToString() is { } auth && auth.StartsWith("Bearer tok-", StringComparison.Ordinal))
                return new HttpResponseMessage(HttpStatusCode.OK);
            Assert.That(bothArrived.SignalAndWait(TimeSpan.FromSeconds(20)), Is.True, "both requests without a token reach the registry");
            var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
            r.Headers.WwwAuthenticate.ParseAdd("Bearer realm=\"http://127.0.0.1:5998/token\",service=\"registry.test\",scope=\"repository:team/app:pull\"");
            return r;
        });
        using var client = Make(handler, null);
        Assert.That(await TwoChecksRacingAsync(client), Is.EqualTo(new[] { true, true }));
        Assert.That(tokensIssued, Is.EqualTo(1), "the second request used the token the first one fetched");
    }
}
