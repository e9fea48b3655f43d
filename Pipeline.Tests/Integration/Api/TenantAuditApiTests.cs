using System.Net;
using System.Net.Http.Headers;
using System.Reflection;
using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using static Pipeline.Tests.Integration.Api.TwoTenants;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// Tenant scoping of the audit API and the audit commands over two tenants sharing one log: a land-a
/// auditor sees land-a and nothing of land-b (another tenant's delivery answers exactly like one that
/// does not exist), the all-tenant auditor sees both, and checkpoints and verify stay global.
/// Every route the audit server maps must have a case here (<see cref="Every_route_of_the_audit_server_has_a_tenant_scoping_case"/>).
/// </summary>
public partial class TenantAuditTests : Support.DeliveryFixture
{
    /// <summary>Each mapped route and the test that proves its tenant scoping.</summary>
    private static readonly Dictionary<string, string> ScopingCases = new(StringComparer.Ordinal)
    {
        ["/api/trace/{**what}"] = nameof(Api_trace_shows_a_scoped_auditor_only_their_tenant_and_answers_another_tenants_delivery_as_not_found),
        ["/api/query"] = nameof(Api_query_returns_only_the_auditors_tenants_entries),
        ["/api/export/{**image}"] = nameof(Api_export_for_tenant_a_holds_nothing_of_tenant_b_and_verifies_offline),
        ["/api/verify"] = nameof(Api_verify_and_checkpoint_are_global_and_name_no_tenants_content),
        ["/api/checkpoint"] = nameof(Api_verify_and_checkpoint_are_global_and_name_no_tenants_content),
        ["/"] = nameof(Pages_and_unknown_paths_carry_no_log_data_for_anyone),
        ["/index.html"] = nameof(Pages_and_unknown_paths_carry_no_log_data_for_anyone),
        ["/app.js"] = nameof(Pages_and_unknown_paths_carry_no_log_data_for_anyone),
        ["/app.css"] = nameof(Pages_and_unknown_paths_carry_no_log_data_for_anyone),
        ["{*path:nonfile}"] = nameof(Pages_and_unknown_paths_carry_no_log_data_for_anyone),
    };

    private TwoTenants _t = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _t = await StartAsync(Harness);
        _http = new HttpClient { BaseAddress = _t.BaseUrl };
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http?.Dispose();
        if (_t is not null) await _t.DisposeAsync();
    }

    private async Task<(HttpStatusCode Status, string Text)> Get(string path, string? token)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, path);
        if (token is not null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var res = await _http.SendAsync(req);
        return (res.StatusCode, await res.Content.ReadAsStringAsync());
    }

    private static string Esc(string s) => Uri.EscapeDataString(s);

    [Test]
    public void Every_route_of_the_audit_server_has_a_tenant_scoping_case()
    {
        var routes = _t.Server.Routes;
        Assert.That(routes, Does.Contain("/api/trace/{**what}"), "the routes were read from the running server");
        Assert.That(routes.Where(r => !ScopingCases.ContainsKey(r)), Is.Empty,
            "every audit route needs a tenant scoping case: add a test and list it in ScopingCases");
        foreach (var test in ScopingCases.Values.Distinct())
            Assert.That(GetType().GetMethod(test)?.GetCustomAttribute<TestAttribute>(), Is.Not.Null, $"{test} is a test of this fixture");
    }

    [Test]
    public async Task Api_trace_shows_a_scoped_auditor_only_their_tenant_and_answers_another_tenants_delivery_as_not_found()
    {
        // Own tenant: found, by image, delivery id and digest.
        foreach (var q in new[] { _t.ImageA, _t.DeliveryA.ToString("D"), _t.DigestA })
        {
            var (status, text) = await Get("/api/trace/" + Esc(q), _t.TokenA);
            Assert.That(status, Is.EqualTo(HttpStatusCode.OK), text);
            var d = JsonNode.Parse(text)!["deliveries"]!.AsArray().Single()!;
            Assert.That((d["deliveryId"]!.GetValue<string>(), d["pipeline"]!.GetValue<string>()), Is.EqualTo((_t.DeliveryA.ToString("D"), _t.A.Name)));
            AssertNoneOf(_t.OnlyB, text, "land-a's trace");
        }

        // Another tenant's image, digest and delivery id: byte for byte the answer for one that does not exist.
        var absent = new Dictionary<string, string>
        {
            [_t.ImageB] = _t.ImageB[..(_t.ImageB.IndexOf('@') + 1)] + "sha256:" + new string('e', 64),
            [_t.DigestB] = "sha256:" + new string('e', 64),
            [_t.DeliveryB.ToString("D")] = Guid.NewGuid().ToString("D"),
        };
        foreach (var (theirs, none) in absent)
        {
            var hidden = await Get("/api/trace/" + Esc(theirs), _t.TokenA);
            var missing = await Get("/api/trace/" + Esc(none), _t.TokenA);
            Assert.That(hidden.Status, Is.EqualTo(HttpStatusCode.NotFound), hidden.Text);
            Assert.That(JsonNode.Parse(hidden.Text)!["code"]!.GetValue<string>(), Is.EqualTo("AUDIT-NOT-FOUND"));
            Assert.That((missing.Status, missing.Text.Replace(none, "Q", StringComparison.Ordinal)), Is.EqualTo((hidden.Status, hidden.Text.Replace(theirs, "Q", StringComparison.Ordinal))),
                "no existence oracle: another tenant's delivery answers like a missing one");
            Assert.That((await Get("/api/trace/" + Esc(theirs), _t.TokenAll)).Status, Is.EqualTo(HttpStatusCode.OK), "the all-tenant auditor finds it");
        }

        // A tag both tenants used: each scoped auditor sees only their own delivery, the all-tenant auditor both.
        async Task<string[]> Pipelines(string token) => JsonNode.Parse((await Get("/api/trace/v1.0.0", token)).Text)!["deliveries"]!.AsArray()
            .Select(d => d!["pipeline"]!.GetValue<string>()).Order().ToArray();
        Assert.That(await Pipelines(_t.TokenA), Is.EqualTo(new[] { _t.A.Name }));
        Assert.That(await Pipelines(_t.TokenB), Is.EqualTo(new[] { _t.B.Name }));
        Assert.That(await Pipelines(_t.TokenAll), Is.EquivalentTo(new[] { _t.A.Name, _t.B.Name }));
        AssertNoneOf(_t.OnlyB, (await Get("/api/trace/v1.0.0", _t.TokenA)).Text, "land-a's trace of the shared tag");
    }

    [Test]
    public async Task Api_query_returns_only_the_auditors_tenants_entries()
    {
        var (status, text) = await Get("/api/query?limit=1000", _t.TokenA);
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), text);
        var pipelines = JsonNode.Parse(text)!.AsArray().Select(r => r!["pipeline"]!.GetValue<string>()).ToList();
        Assert.That(pipelines, Is.Not.Empty.And.All.EqualTo(_t.A.Name));
        AssertNoneOf(_t.OnlyB, text, "land-a's query");

        // Asking for the other tenant's pipeline or digest finds nothing (not an error that would tell it exists).
        foreach (var q in new[] { "pipeline=" + Esc(_t.B.Name), "digest=" + Esc(_t.DigestB) })
        {
            var scoped = await Get("/api/query?" + q, _t.TokenA);
            Assert.That((scoped.Status, scoped.Text), Is.EqualTo((HttpStatusCode.OK, "[]")), q);
            Assert.That(JsonNode.Parse((await Get("/api/query?" + q, _t.TokenAll)).Text)!.AsArray(), Is.Not.Empty, "the all-tenant auditor finds " + q);
        }

        var all = JsonNode.Parse((await Get("/api/query?limit=1000", _t.TokenAll)).Text)!.AsArray().Select(r => r!["pipeline"]!.GetValue<string>()).Distinct();
        Assert.That(all, Is.EquivalentTo(new[] { _t.A.Name, _t.B.Name }));
    }

    [Test]
    public async Task Api_export_for_tenant_a_holds_nothing_of_tenant_b_and_verifies_offline()
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, "/api/export/" + Esc(_t.ImageA));
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _t.TokenA);
        using var res = await _http.SendAsync(req);
        var bytes = await res.Content.ReadAsByteArrayAsync();
        Assert.That(res.StatusCode, Is.EqualTo(HttpStatusCode.OK), System.Text.Encoding.UTF8.GetString(bytes));
        var layers = AllLayers(bytes);
        Assert.That(layers, Does.Contain(_t.A.Name).And.Contain(_t.DeliveryA.ToString("D")), "the layers are really decoded");
        AssertNoneOf(_t.OnlyB, layers, "land-a's bundle");
        var verified = AuditBundleVerifier.Verify(AuditBundle.Parse(bytes), new KeyRing([VerificationKey.FromPemFile(_t.PublicKey)]), "tenants.example/ledger");
        Assert.That(verified.Problems, Is.Empty);
        Assert.That(verified.Ok, Is.True);

        // Another tenant's image: exactly the answer for an image that was never delivered.
        var none = _t.ImageB[..(_t.ImageB.IndexOf('@') + 1)] + "sha256:" + new string('e', 64);
        var hidden = await Get("/api/export/" + Esc(_t.ImageB), _t.TokenA);
        var missing = await Get("/api/export/" + Esc(none), _t.TokenA);
        Assert.That(hidden.Status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(JsonNode.Parse(hidden.Text)!["code"]!.GetValue<string>(), Is.EqualTo("AUDIT-NOT-FOUND"));
        Assert.That(missing.Text.Replace(none, "Q", StringComparison.Ordinal), Is.EqualTo(hidden.Text.Replace(_t.ImageB, "Q", StringComparison.Ordinal)));

        // The all-tenant auditor exports it; land-b's own auditor too, and that bundle holds nothing of land-a.
        Assert.That((await Get("/api/export/" + Esc(_t.ImageB), _t.TokenAll)).Status, Is.EqualTo(HttpStatusCode.OK));
        var b = await Get("/api/export/" + Esc(_t.ImageB), _t.TokenB);
        Assert.That(b.Status, Is.EqualTo(HttpStatusCode.OK));
        AssertNoneOf(_t.OnlyA, AllLayers(System.Text.Encoding.UTF8.GetBytes(b.Text)), "land-b's bundle");
    }

    [Test]
    public async Task Api_verify_and_checkpoint_are_global_and_name_no_tenants_content()
    {
        foreach (var path in new[] { "/api/verify", "/api/checkpoint" })
        {
            var scoped = await Get(path, _t.TokenA);
            var all = await Get(path, _t.TokenAll);
            Assert.That(scoped.Status, Is.EqualTo(HttpStatusCode.OK), scoped.Text);
            Assert.That(scoped.Text, Is.EqualTo(all.Text), $"{path}: the same global answer for every auditor (one log, its proofs stay global)");
            AssertNoneOf(_t.OnlyA.Concat(_t.OnlyB).ToList(), scoped.Text, path);
        }

        var verify = JsonNode.Parse((await Get("/api/verify", _t.TokenA)).Text)!;
        Assert.That(verify["problems"]!.AsArray(), Is.Empty, "the whole log verified for the scoped auditor too");
        Assert.That(verify["treeSize"]!.GetValue<long>(), Is.GreaterThanOrEqualTo(12), "both deliveries' entries (six each) are in the one log");
    }

    [Test]
    public async Task Pages_and_unknown_paths_carry_no_log_data_for_anyone()
    {
        foreach (var path in new[] { "/", "/index.html", "/app.js", "/app.css" })
        {
            var anonymous = await Get(path, null);
            Assert.That(anonymous.Status, Is.EqualTo(HttpStatusCode.OK), path);
            Assert.That((await Get(path, _t.TokenA)).Text, Is.EqualTo(anonymous.Text), $"{path} is the same static file for everyone");
            AssertNoneOf(_t.OnlyA.Concat(_t.OnlyB).ToList(), anonymous.Text, path);
        }

        var unknown = await Get("/api/nothing-here", _t.TokenA);
        Assert.That(unknown.Status, Is.EqualTo(HttpStatusCode.NotFound));
        Assert.That(JsonNode.Parse(unknown.Text)!["code"]!.GetValue<string>(), Is.EqualTo("API-NOT-FOUND"));
    }
}
