using System.Net;
using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Distribution;

public class RegistryClientTests
{
    private static readonly Uri Base = new("http://127.0.0.1:5999");

    private static (RegistryClient Client, FakeRegistryHandler Handler) Make(Func<HttpRequestMessage, HttpResponseMessage> respond, RegistryCredentials? creds = null)
    {
        var handler = new FakeRegistryHandler(respond);
        return (new RegistryClient(new RegistryEndpoint(Base, creds), new RegistryClientOptions { MaxAttempts = 1 }, new HttpClient(handler)), handler);
    }

    [Test]
    public async Task Registry_error_body_becomes_code_status_and_message()
    {
        var (client, _) = Make(_ => FakeRegistryHandler.Json(HttpStatusCode.NotFound,
            "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{}}]}"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync("team/app", "v1"));
        Assert.That(ex!.Code, Is.EqualTo("REG-MANIFEST-004"));
        Assert.That(ex.RegistryCode, Is.EqualTo("MANIFEST_UNKNOWN"));
        Assert.That(ex.StatusCode, Is.EqualTo(404));
        Assert.That(ex.IsTransient, Is.False);
        Assert.That(ex.Message, Is.EqualTo("Manifest download http://127.0.0.1:5999/v2/team/app/manifests/v1 failed: HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)."));
    }

    [TestCase(HttpStatusCode.InternalServerError, true)]
    [TestCase(HttpStatusCode.ServiceUnavailable, true)]
    [TestCase(HttpStatusCode.TooManyRequests, true)]
    [TestCase(HttpStatusCode.BadRequest, false)]
    public async Task Transient_flag_follows_status(HttpStatusCode status, bool transient)
    {
        var (client, _) = Make(_ => new HttpResponseMessage(status) { Content = new StringContent("not json") });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.IsTransient, Is.EqualTo(transient));
        Assert.That(ex.StatusCode, Is.EqualTo((int)status));
        Assert.That(ex.RegistryCode, Is.Null);
    }

    [Test]
    public async Task Connection_failure_is_transient_and_redacted()
    {
        var (client, _) = Make(_ => throw new HttpRequestException("Connection refused (http://user:secret@127.0.0.1:5999/v2/)"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-NET-001"));
        Assert.That(ex.IsTransient);
        Assert.That(ex.Message, Does.Not.Contain("secret"));
        Assert.That(ex.Message, Does.Contain("http://***@127.0.0.1:5999"));
    }

    [Test]
    public async Task Timeout_is_transient()
    {
        var (client, _) = Make(_ => throw new TaskCanceledException("timeout"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-NET-001"));
        Assert.That(ex.IsTransient);
        Assert.That(ex.Message, Does.Contain("timed out"));
    }

    [Test]
    public async Task Basic_challenge_is_answered_with_credentials_then_sent_preemptively()
    {
        var creds = new RegistryCredentials("ci", "s3cret!");
        var expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:s3cret!"));
        var (client, handler) = Make(req =>
        {
            if (req.Headers.Authorization?.ToString() == expected) return new HttpResponseMessage(HttpStatusCode.OK);
            var r = FakeRegistryHandler.Json(HttpStatusCode.Unauthorized, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}");
            r.Headers.WwwAuthenticate.ParseAdd("Basic realm=\"Registry\"");
            return r;
        }, creds);
        await client.PingAsync();
        await client.PingAsync();
        Assert.That(handler.Requests.Select(r => r.Authorization), Is.EqualTo(new[] { null, expected, expected }));
    }

    [Test]
    public async Task Wrong_credentials_give_auth_error_without_the_password()
    {
        var (client, _) = Make(_ =>
        {
            var r = FakeRegistryHandler.Json(HttpStatusCode.Unauthorized, "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}");
            r.Headers.WwwAuthenticate.ParseAdd("Basic realm=\"Registry\"");
            return r;
        }, new RegistryCredentials("ci", "s3cret!"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-AUTH-001"));
        Assert.That(ex.RegistryCode, Is.EqualTo("UNAUTHORIZED"));
        Assert.That(ex.Message, Does.Contain("check the registry credentials"));
        Assert.That(ex.Message, Does.Not.Contain("s3cret"));
    }

    [Test]
    public async Task Unknown_auth_scheme_is_reported_as_unsupported()
    {
        var (client, _) = Make(_ =>
        {
            var r = new HttpResponseMessage(HttpStatusCode.Unauthorized);
            r.Headers.WwwAuthenticate.ParseAdd("Negotiate");
            return r;
        }, new RegistryCredentials("ci", "pw"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-AUTH-001"));
        Assert.That(ex.Message, Does.Contain("wants 'Negotiate' auth, which is not supported"));
    }

    [Test]
    public async Task Blob_with_wrong_content_is_rejected()
    {
        var wanted = Digest.Compute("expected"u8);
        var (client, _) = Make(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent("tampered"u8.ToArray()) });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetBlobAsync("team/app", wanted, new MemoryStream()));
        Assert.That(ex!.Code, Is.EqualTo("REG-BLOB-001"));
        Assert.That(ex.Message, Does.Contain($"expected {wanted}, got {Digest.Compute("tampered"u8)}"));
    }

    [Test]
    public async Task Blob_with_wrong_size_or_over_cap_is_rejected()
    {
        var content = "expected"u8.ToArray();
        var digest = Digest.Compute(content);
        var (client, _) = Make(_ => new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(content) });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetBlobAsync("team/app", digest, new MemoryStream(), expectedSize: 4));
        Assert.That(ex!.Code, Is.EqualTo("REG-BLOB-003"));
        ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetBlobAsync("team/app", digest, new MemoryStream(), expectedSize: 9));
        Assert.That(ex!.Code, Is.EqualTo("REG-BLOB-002"));
        Assert.That(ex.Message, Does.Contain("has 8 bytes, expected 9"));
    }

    [Test]
    public async Task Manifest_fetched_by_digest_must_hash_to_it()
    {
        var asked = Digest.Compute("{}"u8);
        var (client, _) = Make(_ =>
        {
            var r = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent("{\"other\":1}"u8.ToArray()) };
            r.Content.Headers.ContentType = new(MediaTypes.OciManifest);
            return r;
        });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync("team/app", asked.ToString()));
        Assert.That(ex!.Code, Is.EqualTo("REG-MANIFEST-003"));
        Assert.That(ex.Message, Does.Contain($"requested as {asked} hashes to"));
    }

    [Test]
    public async Task Manifest_push_checks_the_registry_digest()
    {
        var bytes = "{\"schemaVersion\":2}"u8.ToArray();
        var (client, _) = Make(_ =>
        {
            var r = new HttpResponseMessage(HttpStatusCode.Created);
            r.Headers.Add("Docker-Content-Digest", Digest.Compute("something else"u8).ToString());
            return r;
        });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PushManifestAsync("team/app", "v1", bytes, MediaTypes.OciManifest));
        Assert.That(ex!.Code, Is.EqualTo("REG-MANIFEST-003"));
        Assert.That(ex.Message, Does.Contain($"but its bytes hash to {Digest.Compute(bytes)}"));
    }

    [Test]
    public async Task Blob_push_verifies_location_and_digest_and_keeps_upload_state_query()
    {
        var content = "layer bytes"u8.ToArray();
        var desc = new Descriptor(MediaTypes.OciLayerTarGzip, Digest.Compute(content), content.Length);
        var (client, handler) = Make(req =>
        {
            if (req.Method == HttpMethod.Head) return new HttpResponseMessage(HttpStatusCode.NotFound);
            if (req.Method == HttpMethod.Post)
            {
                var r = new HttpResponseMessage(HttpStatusCode.Accepted);
                r.Headers.Location = new Uri("/v2/team/app/blobs/uploads/abc?_state=xyz", UriKind.Relative);
                return r;
            }
            var put = new HttpResponseMessage(HttpStatusCode.Created);
            put.Headers.Location = new Uri($"/v2/team/app/blobs/{desc.Digest}", UriKind.Relative);
            put.Headers.Add("Docker-Content-Digest", desc.Digest.ToString());
            return put;
        });
        Assert.That(await client.PushBlobAsync("team/app", desc, () => new MemoryStream(content)), Is.True);
        var putUri = handler.Requests.Single(r => r.Method == HttpMethod.Put).Uri;
        Assert.That(putUri.Query, Is.EqualTo($"?_state=xyz&digest={Uri.EscapeDataString(desc.Digest.ToString())}"));

        var wrongContent = new Descriptor(MediaTypes.OciLayerTarGzip, Digest.Compute("other"u8), content.Length);
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PushBlobAsync("team/app", wrongContent, () => new MemoryStream(content)));
        Assert.That(ex!.Code, Is.EqualTo("REG-BLOB-001"), "a local blob that does not hash to its descriptor is refused");
    }

    [Test]
    public async Task Blob_that_exists_is_not_uploaded()
    {
        var (client, handler) = Make(_ => new HttpResponseMessage(HttpStatusCode.OK));
        var desc = new Descriptor(MediaTypes.OciConfig, Digest.Compute("c"u8), 1);
        Assert.That(await client.PushBlobAsync("team/app", desc, () => throw new AssertionException("must not open")), Is.False);
        Assert.That(handler.Requests.Select(r => r.Method), Is.EqualTo(new[] { HttpMethod.Head }));
    }

    [Test]
    public async Task Invalid_names_and_references_are_rejected_before_any_request()
    {
        var (client, handler) = Make(_ => throw new AssertionException("no request expected"));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync("Team/App", "v1"));
        Assert.That(ex!.Code, Is.EqualTo("REG-NAME-001"));
        ex = await Assert.ThrowsAsync<RegistryException>(() => client.GetManifestAsync("team/app", "../v1"));
        Assert.That(ex!.Code, Is.EqualTo("REG-REF-001"));
        Assert.That(handler.Requests, Is.Empty);
    }
}
