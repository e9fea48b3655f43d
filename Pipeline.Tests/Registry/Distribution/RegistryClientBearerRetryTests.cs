using System.Net;
using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Distribution;

public class RegistryClientBearerRetryTests
{
    private static readonly Uri Base = new("http://127.0.0.1:5999");
    private const string Realm = "http://127.0.0.1:5999/token";

    private static (RegistryClient Client, FakeRegistryHandler Handler) Make(Func<HttpRequestMessage, HttpResponseMessage> respond,
        RegistryCredentials? creds = null, int attempts = 4)
    {
        var handler = new FakeRegistryHandler(respond);
        var options = new RegistryClientOptions { MaxAttempts = attempts, RetryBaseDelay = TimeSpan.Zero };
        return (new RegistryClient(new RegistryEndpoint(Base, creds), options, new HttpClient(handler)), handler);
    }

    private static HttpResponseMessage Challenge(string scope)
    {
        var r = FakeRegistryHandler.Json(HttpStatusCode.Unauthorized, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"token required\"}]}");
        r.Headers.WwwAuthenticate.ParseAdd($"Bearer realm=\"{Realm}\",service=\"registry.test\",scope=\"{scope}\"");
        return r;
    }

    [Test]
    public async Task Bearer_challenge_fetches_a_token_with_basic_credentials_and_retries_with_it()
    {
        var basic = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:s3cret"));
        var (client, handler) = Make(req =>
        {
            if (req.RequestUri!.AbsolutePath == "/token")
            {
                Assert.That(req.Headers.Authorization?.ToString(), Is.EqualTo(basic), "the token service gets the Basic credentials");
                return FakeRegistryHandler.Json(HttpStatusCode.OK, "{\"token\":\"tok-123\",\"expires_in\":300}");
            }
            return req.Headers.Authorization?.ToString() == "Bearer tok-123"
                ? new HttpResponseMessage(HttpStatusCode.NotFound)
                : Challenge("repository:team/app:pull");
        }, new RegistryCredentials("ci", "s3cret"));

        Assert.That(await client.BlobExistsAsync("team/app", Digest.Compute("x"u8)), Is.False);
        var token = handler.Requests.Single(r => r.Uri.AbsolutePath == "/token").Uri;
        Assert.That(token.Query, Does.Contain("service=registry.test"));
        Assert.That(token.Query, Does.Contain("scope=repository%3Ateam%2Fapp%3Apull"));
        Assert.That(handler.Requests.Last().Authorization, Is.EqualTo("Bearer tok-123"));
    }

    [Test]
    public async Task Token_for_a_second_repository_asks_for_both_scopes()
    {
        var (client, handler) = Make(req =>
        {
            if (req.RequestUri!.AbsolutePath == "/token")
            {
                var q = Uri.UnescapeDataString(req.RequestUri.Query);
                return FakeRegistryHandler.Json(HttpStatusCode.OK, q.Contains("repository:b:pull") ? "{\"access_token\":\"both\"}" : "{\"token\":\"only-a\"}");
            }
            var repo = req.RequestUri.AbsolutePath.Split('/')[2];
            var auth = req.Headers.Authorization?.ToString();
            var ok = (repo == "a" && auth is "Bearer only-a" or "Bearer both") || (repo == "b" && auth == "Bearer both");
            return ok ? new HttpResponseMessage(HttpStatusCode.NotFound) : Challenge($"repository:{repo}:pull");
        });
        await client.BlobExistsAsync("a", Digest.Compute("x"u8));
        await client.BlobExistsAsync("b", Digest.Compute("x"u8));
        var last = handler.Requests.Last(r => r.Uri.AbsolutePath == "/token").Uri;
        Assert.That(Uri.UnescapeDataString(last.Query), Does.Contain("scope=repository:a:pull").And.Contain("scope=repository:b:pull"));
    }

    [Test]
    public async Task Refused_token_request_is_an_auth_error_without_secrets()
    {
        var (client, _) = Make(req => req.RequestUri!.AbsolutePath == "/token"
            ? new HttpResponseMessage(HttpStatusCode.Unauthorized)
            : Challenge("repository:team/app:pull"), new RegistryCredentials("ci", "very-secret-pw"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-AUTH-001"));
        Assert.That(ex.Message, Does.Contain("refused the credentials"));
        Assert.That(ex.Message, Does.Not.Contain("very-secret-pw"));
    }

    [Test]
    public async Task Token_that_keeps_being_refused_ends_with_the_registry_401()
    {
        var (client, handler) = Make(req => req.RequestUri!.AbsolutePath == "/token"
            ? FakeRegistryHandler.Json(HttpStatusCode.OK, "{\"token\":\"useless\"}")
            : Challenge("repository:team/app:pull"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-AUTH-001"));
        Assert.That(handler.Requests.Count(r => r.Uri.AbsolutePath == "/token"), Is.EqualTo(1), "the same token is not fetched again and again");
    }

    [Test]
    public async Task Token_realm_over_plain_http_to_another_host_is_refused()
    {
        var (client, handler) = Make(_ =>
        {
            var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
            r.Headers.WwwAuthenticate.ParseAdd("Bearer realm=\"http://auth.example.com/token\",service=\"x\"");
            return r;
        }, new RegistryCredentials("ci", "pw"));
        var ex = (await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync()))!;
        Assert.That(ex.Code, Is.EqualTo("REG-AUTH-002"));
        Assert.That(ex.Message, Does.Contain("must be https"));
        Assert.That(handler.Requests.Any(r => r.Uri.Host == "auth.example.com"), Is.False, "credentials never went to the plain-http realm");
    }

    [Test]
    public void Challenge_parameters_are_parsed_with_quotes_and_commas()
    {
        var p = BearerAuth.ParseChallenge("realm=\"https://a/t\",service=\"reg\",scope=\"repository:x/y:pull,push\"");
        Assert.That(p["realm"], Is.EqualTo("https://a/t"));
        Assert.That(p["service"], Is.EqualTo("reg"));
        Assert.That(p["scope"], Is.EqualTo("repository:x/y:pull,push"));
    }

    [Test]
    public async Task Transient_failures_are_retried_until_success()
    {
        var calls = 0;
        var (client, handler) = Make(_ => ++calls switch
        {
            1 => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable),
            2 => throw new HttpRequestException("connection reset"),
            _ => new HttpResponseMessage(HttpStatusCode.OK),
        });
        await client.PingAsync();
        Assert.That(handler.Requests, Has.Count.EqualTo(3));
    }

    [Test]
    public async Task Permanent_failures_are_not_retried()
    {
        var (client, handler) = Make(_ => FakeRegistryHandler.Json(HttpStatusCode.BadRequest, "{\"errors\":[{\"code\":\"NAME_INVALID\",\"message\":\"bad\"}]}"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.RegistryCode, Is.EqualTo("NAME_INVALID"));
        Assert.That(handler.Requests, Has.Count.EqualTo(1));
    }

    [Test]
    public async Task Retries_stop_after_max_attempts_with_a_transient_error()
    {
        var (client, handler) = Make(_ => new HttpResponseMessage(HttpStatusCode.BadGateway), attempts: 3);
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.IsTransient, Is.True);
        Assert.That(ex.StatusCode, Is.EqualTo(502));
        Assert.That(handler.Requests, Has.Count.EqualTo(3));
    }

    [Test]
    public void Invalid_options_are_rejected()
    {
        var ex = Assert.Throws<RegistryException>(() => new RegistryClient(new RegistryEndpoint(Base), new RegistryClientOptions { MaxAttempts = 0 }));
        Assert.That(ex!.Code, Is.EqualTo("REG-OPTIONS-001"));
        var ca = Assert.Throws<RegistryException>(() => new RegistryClient(new RegistryEndpoint(new Uri("https://127.0.0.1:5999")),
            new RegistryClientOptions { CaBundleFile = "/nonexistent/ca.pem" }));
        Assert.That(ca!.Code, Is.EqualTo("REG-TLS-001"));
        Assert.That(ca.Message, Does.Contain("Cannot read the registry CA bundle"));
    }
}
