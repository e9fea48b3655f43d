using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Engine.Api;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// The auditors' HTTP API over a real ledger (PostgreSQL) holding a real accepted delivery and a
/// real rejected one (git, clamd, registry): authentication, every endpoint, the security headers,
/// and that no token ever reaches the log.
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class AuditApiTests : DeliveryFixture
{
    /// <summary>Everything a test of the running API needs; shared with the browser tests.</summary>
    internal sealed record Running(Scenario Scenario, PipelineEngine Engine, AuditApiServer Server, Uri BaseUrl, string Token, string Image, string Digest,
        Guid AcceptedId, Guid RejectedId, CapturingSink Log) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Engine.DisposeAsync();
        }
    }

    private Running _api = null!;
    private HttpClient _http = null!;

    /// <summary>An accepted delivery (v1.0.0) and one rejected at verify (v1.0.1, unknown signer), then the API on a free loopback port.</summary>
    internal static async Task<Running> StartAsync(DeliveryHarness harness)
    {
        var s = harness.NewScenario();
        var keyFile = Path.Combine(s.Root, "engine-signing.pem");
        using (var key = EngineSigningKey.Generate()) key.WritePrivatePem(keyFile);
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        File.WriteAllText(Path.Combine(s.Root, "auditors.sha256"),
            $"# auditors\n{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))} alice@audit.example\n{new string('0', 64)} revoked\n");
        File.AppendAllText(s.ConfigPath, "\nattestation:\n  signingKeyFile: engine-signing.pem\nledger:\n  origin: api.example/ledger\naudit:\n  apiTokensFile: auditors.sha256\n");
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var accepted = (await s.RunAsync()).Deliveries.Single();
        Assert.That(accepted.Status, Is.EqualTo(DeliveryStatus.Accepted), accepted.Reason);
        s.WriteGoodDelivery("1.0.1");
        s.Publish("v1.0.1", SupplierRepo.NewKey(s.Root, "stranger"));
        var rejected = (await s.RunAsync()).Deliveries.Single();
        Assert.That((rejected.Status, rejected.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, "CHK-SSH-005")));

        var sink = new CapturingSink();
        var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default);
        var server = await AuditApiServer.StartAsync(engine, "http://127.0.0.1:0", allowRemote: false, default);
        var image = accepted.Images.Single();
        return new Running(s, engine, server, new Uri(server.Addresses.Single()), token, image, image[(image.IndexOf('@') + 1)..], accepted.DeliveryId, rejected.DeliveryId, sink);
    }

    [OneTimeSetUp]
    public async Task Start()
    {
        _api = await StartAsync(Harness);
        _http = new HttpClient { BaseAddress = _api.BaseUrl };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_api is not null) await _api.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, JsonNode? Body, HttpResponseMessage Response)> Get(string path, string? token = "valid", string scheme = "Bearer")
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) req.Headers.Authorization = new AuthenticationHeaderValue(scheme, token == "valid" ? _api.Token : token);
        var res = await _http.SendAsync(req);
        var text = await res.Content.ReadAsStringAsync();
        return (res.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text), res);
    }

    [Test]
    public void The_server_listens_on_loopback_only()
    {
        Assert.That(_api.BaseUrl.Host, Is.EqualTo("127.0.0.1"));
        Assert.That(_api.BaseUrl.Port, Is.GreaterThan(0));
    }

    [TestCase("/api/trace/v1.0.0")]
    [TestCase("/api/verify")]
    [TestCase("/api/query")]
    [TestCase("/api/checkpoint")]
    [TestCase("/api/export/sha256:00")]
    public async Task Every_endpoint_answers_401_without_a_token_naming_what_is_missing(string path)
    {
        var (status, body, res) = await Get(path, token: null);
        Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(body!["code"]!.GetValue<string>(), Is.EqualTo("API-NO-TOKEN"));
        Assert.That(res.Headers.WwwAuthenticate.ToString(), Does.StartWith("Bearer"));
        Assert.That(body.ToJsonString(), Does.Not.Contain("deliveries").And.Not.Contain("treeSize"), "nothing of the log leaks to an anonymous caller");
    }

    [Test]
    public async Task A_wrong_token_a_revoked_hash_and_a_token_in_the_wrong_case_are_refused()
    {
        foreach (var bad in new[] { "not-a-token", _api.Token.ToUpperInvariant() == _api.Token ? _api.Token.ToLowerInvariant() : _api.Token.ToUpperInvariant(), _api.Token + "x", new string('0', 64) })
        {
            var (status, body, _) = await Get("/api/checkpoint", bad);
            Assert.That(status, Is.EqualTo(HttpStatusCode.Unauthorized), bad);
            Assert.That(body!["code"]!.GetValue<string>(), Is.EqualTo("API-BAD-TOKEN"));
            Assert.That(body["message"]!.GetValue<string>(), Does.Contain("audit.apiTokensFile"));
        }

        // A token sent as a basic-auth password works; the same token with another scheme does not.
        var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:" + _api.Token));
        Assert.That((await Get("/api/checkpoint", basic, "Basic")).Status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That((await Get("/api/checkpoint", _api.Token, "Token")).Status, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task Trace_by_image_digest_shows_the_six_signed_stages_each_link_checked()
    {
        var (status, body, res) = await Get("/api/trace/" + Uri.EscapeDataString(_api.Image));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), body?.ToJsonString());
        Assert.That(body!["ok"]!.GetValue<bool>(), Is.True);
        var delivery = body["deliveries"]!.AsArray().Single()!;
        Assert.That(delivery["deliveryId"]!.GetValue<string>(), Is.EqualTo(_api.AcceptedId.ToString("D")));
        var steps = delivery["steps"]!.AsArray();
        Assert.That(steps.Select(x => x!["record"]!["stage"]!.GetValue<string>() + ":" + x["record"]!["verdict"]!.GetValue<string>()),
            Is.EqualTo(new[] { "fetch:passed", "verify:passed", "scan:passed", "publish:passed", "build:passed", "push:passed" }));
        Assert.That(steps.All(x => x!["signatureValid"]!.GetValue<bool>() && x["includedInCheckpoint"]!.GetValue<bool>() && x["unlinkedMaterials"]!.AsArray().Count == 0));
        Assert.That(steps[1]!["record"]!["signer"]!.GetValue<string>(), Does.Contain("Certified Release Key"));
        Assert.That(steps[5]!["record"]!["subjects"]!.ToJsonString(), Does.Contain(_api.Digest[7..]), "the push statement names the image digest");

        // The same answer by bare digest and by delivery id.
        Assert.That((await Get("/api/trace/" + _api.Digest)).Body!["deliveries"]![0]!["deliveryId"]!.GetValue<string>(), Is.EqualTo(_api.AcceptedId.ToString("D")));
        Assert.That((await Get("/api/trace/" + _api.AcceptedId)).Body!["deliveries"]!.AsArray().Single()!["steps"]!.AsArray().Count, Is.EqualTo(6));

        Assert.That(res.Headers.CacheControl!.NoStore, Is.True);
        Assert.That(res.Headers.GetValues("X-Content-Type-Options").Single(), Is.EqualTo("nosniff"));
        Assert.That(res.Headers.GetValues("Content-Security-Policy").Single(), Does.StartWith("default-src 'self'"));
        Assert.That(res.Headers.Contains("Server"), Is.False);
        Assert.That(res.Content.Headers.ContentType!.MediaType, Is.EqualTo("application/json"));
    }

    [Test]
    public async Task Trace_by_tag_of_the_rejected_delivery_shows_where_and_why_it_stopped()
    {
        var (status, body, _) = await Get("/api/trace/v1.0.1");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        var steps = body!["deliveries"]!.AsArray().Single()!["steps"]!.AsArray();
        Assert.That(steps.Select(x => x!["record"]!["stage"]!.GetValue<string>()), Is.EqualTo(new[] { "fetch", "verify" }));
        Assert.That(steps[1]!["record"]!["verdict"]!.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(steps[1]!["record"]!["reasonCode"]!.GetValue<string>(), Is.EqualTo("CHK-SSH-005"));
    }

    [Test]
    public async Task Trace_of_something_not_in_the_log_is_404_with_the_code()
    {
        var (status, body, _) = await Get("/api/trace/sha256:" + new string('a', 64));
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body!["code"]!.GetValue<string>(), Is.EqualTo("AUDIT-NOT-FOUND"));
        Assert.That(body["message"]!.GetValue<string>(), Does.Contain(new string('a', 64)));
    }

    [Test]
    public async Task Query_filters_by_verdict_pipeline_supplier_signer_and_time_and_rejects_bad_parameters()
    {
        var failed = (await Get("/api/query?verdict=failed")).Body!.AsArray();
        Assert.That(failed.Select(x => x!["stage"]!.GetValue<string>() + ":" + x["reasonCode"]!.GetValue<string>()), Is.EqualTo(new[] { "verify:CHK-SSH-005" }));

        var keyId = _api.Engine.SigningKey.KeyId;
        var all = (await Get($"/api/query?pipeline={_api.Scenario.Name}&supplier={Uri.EscapeDataString("Test Supplier GmbH")}&signer={keyId}&verdict=passed")).Body!.AsArray();
        Assert.That(all, Has.Count.EqualTo(7), "six stages of the accepted delivery and the fetch of the rejected one");
        Assert.That(all.Select(x => x!["keyId"]!.GetValue<string>()).Distinct(), Is.EqualTo(new[] { keyId }));
        Assert.That((await Get("/api/query?signer=" + new string('f', 64))).Body!.AsArray(), Is.Empty);
        Assert.That((await Get("/api/query?from=2999-01-01T00:00:00Z")).Body!.AsArray(), Is.Empty);
        Assert.That((await Get("/api/query?to=2000-01-01T00:00:00Z")).Body!.AsArray(), Is.Empty);
        Assert.That((await Get("/api/query?limit=2")).Body!.AsArray(), Has.Count.EqualTo(2));

        foreach (var (query, needle) in new[] { ("verdict=maybe", "'verdict'"), ("from=yesterday", "'from'"), ("limit=0", "'limit'"), ("limit=5000", "'limit'"), ("color=red", "'color'") })
        {
            var (status, body, _) = await Get("/api/query?" + query);
            Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest), query);
            Assert.That(body!["code"]!.GetValue<string>(), Is.EqualTo("API-BAD-QUERY"));
            Assert.That(body["message"]!.GetValue<string>(), Does.Contain(needle));
        }
    }

    [Test]
    public async Task Checkpoint_and_whole_log_verification_agree_and_verify_accepts_an_auditor_checkpoint()
    {
        var (status, cp, _) = await Get("/api/checkpoint");
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(cp!["origin"]!.GetValue<string>(), Is.EqualTo("api.example/ledger"));
        Assert.That(cp["treeSize"]!.GetValue<long>(), Is.EqualTo(8), "6 + 2 entries, checkpointed after each delivery");

        var (vs, verify, _) = await Get("/api/verify");
        Assert.That(vs, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(verify!["ok"]!.GetValue<bool>(), Is.True, verify.ToJsonString());
        Assert.That(verify["treeSize"]!.GetValue<long>(), Is.EqualTo(8));
        Assert.That(verify["rootHex"]!.GetValue<string>(), Is.EqualTo(cp["rootHex"]!.GetValue<string>()));

        var note = cp["note"]!.GetValue<string>();
        var since = (await Get("/api/verify?sinceCheckpoint=" + Uri.EscapeDataString(note))).Body!;
        Assert.That(since["ok"]!.GetValue<bool>(), Is.True, since.ToJsonString());
        Assert.That(since["sinceCheckpoint"]!["treeSize"]!.GetValue<long>(), Is.EqualTo(8));

        // A note whose signature does not verify is a problem of the answer, named by code.
        var forged = note.Replace("\n8\n", "\n7\n", StringComparison.Ordinal);
        var bad = (await Get("/api/verify?sinceCheckpoint=" + Uri.EscapeDataString(forged))).Body!;
        Assert.That(bad["ok"]!.GetValue<bool>(), Is.False);
        Assert.That(bad["problems"]![0]!["code"]!.GetValue<string>(), Does.StartWith("LOG-CHECKPOINT"));
    }

    [Test]
    public async Task Export_returns_a_bundle_that_verifies_offline_with_the_engine_key()
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/api/export/" + _api.Digest);
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _api.Token);
        using var res = await _http.SendAsync(req);
        Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(res.Content.Headers.ContentDisposition!.DispositionType, Is.EqualTo("attachment"));
        var bundle = AuditBundle.Parse(await res.Content.ReadAsByteArrayAsync());
        Assert.That(bundle.Subject, Is.EqualTo(_api.Digest));
        var result = AuditBundleVerifier.Verify(bundle, new KeyRing([_api.Engine.SigningKey.Public]), "api.example/ledger");
        Assert.That(result.Ok, Is.True, string.Join("\n", result.Problems));
        Assert.That(result.Steps.Select(x => x.Record.Stage), Is.EqualTo(new[] { "fetch", "verify", "scan", "publish", "build", "push" }));

        var (status, body, _) = await Get("/api/export/sha256:" + new string('b', 64));
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body!["code"]!.GetValue<string>(), Is.EqualTo("AUDIT-NOT-FOUND"));
    }

    [Test]
    public async Task The_api_is_read_only_and_unknown_paths_are_404()
    {
        foreach (var method in new[] { HttpMethod.Post, HttpMethod.Put, HttpMethod.Delete })
        {
            using var req = new HttpRequestMessage(method, "/api/checkpoint");
            req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _api.Token);
            using var res = await _http.SendAsync(req);
            Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed), method.Method);
            Assert.That(await res.Content.ReadAsStringAsync(), Does.Contain("API-METHOD"));
        }

        var (status, body, _) = await Get("/api/deliveries");
        Assert.That(status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(body!["code"]!.GetValue<string>(), Is.EqualTo("API-NOT-FOUND"));
    }

    [Test]
    public async Task The_page_and_its_assets_are_served_with_a_strict_content_security_policy()
    {
        using var page = await _http.GetAsync("/");
        Assert.That(page.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var html = await page.Content.ReadAsStringAsync();
        Assert.That(html, Does.Contain("<script src=\"app.js\"").And.Not.Contain("http://").And.Not.Contain("https://"), "no CDN, no inline script");
        Assert.That(page.Headers.GetValues("Content-Security-Policy").Single(), Does.Contain("default-src 'self'"));
        using var js = await _http.GetAsync("/app.js");
        Assert.That(js.Content.Headers.ContentType!.MediaType, Is.EqualTo("text/javascript"));
        var script = await js.Content.ReadAsStringAsync();
        Assert.That(script, Does.Contain("sessionStorage").And.Contain("Authorization"));
        Assert.That(script, Does.Not.Contain("localStorage"), "the token lives for the tab only");
    }

    private static async Task<(int Rc, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await Pipeline.Engine.Cli.PipelineCli.RunAsync(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Test]
    public async Task Serve_refuses_a_non_loopback_bind_before_touching_anything()
    {
        var (rc, _, err) = await Cli("audit", "serve", "--urls", "http://0.0.0.0:8099", "--config", _api.Scenario.ConfigPath);
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(err, Does.StartWith("API-REMOTE-BIND: refusing to listen on 'http://0.0.0.0:8099'").And.Contain("--allow-remote"));
    }

    [Test]
    public async Task Serve_refuses_to_start_without_an_auditor_token_file()
    {
        var s = Harness.NewScenario();
        var (rc, _, err) = await Cli("audit", "serve", "--urls", "http://127.0.0.1:0", "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(2));
        Assert.That(err, Does.StartWith("API-NO-TOKENS: no auditor tokens configured").And.Contain("apiTokensFile"));
    }

    [Test]
    public async Task No_token_or_authorization_header_ever_reaches_the_log()
    {
        await Get("/api/checkpoint");
        await Get("/api/checkpoint", "wrong-token-value-123");
        var lines = string.Join("\n", _api.Log.Lines);
        Assert.That(lines, Does.Contain("Audit API \"GET\" \"/api/checkpoint\" 200"), "requests are logged");
        Assert.That(lines, Does.Contain("alice@audit.example"), "with the auditor's label");
        Assert.That(lines, Does.Not.Contain(_api.Token).And.Not.Contain("wrong-token-value-123").And.Not.Contain("Bearer"));
    }
}
