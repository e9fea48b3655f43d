using System.Text.Json.Nodes;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Api.TenantScopeSetup;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// Tenant scoping of people over the real engine, PostgreSQL and registry (two tenants, see
/// <see cref="TenantScopeSetup"/>): for every portal route and every lifecycle command, a person
/// of one tenant asking about the other tenant's delivery, pass or pipeline gets exactly the
/// answer for an unknown one (status, code and body), lists never carry the other tenant's
/// items, nothing is recorded, and the same request by a person of the owning tenant works.
/// The route and command tables are checked against what the host maps and the CLI registers, so
/// a new endpoint or command without a scoping case fails the suite.
/// </summary>
public partial class TenantScopeTests : DeliveryFixture
{
    private Running _t = null!;

    [OneTimeSetUp]
    public async Task Start() => _t = await StartAsync(Harness);

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_t is not null) await _t.DisposeAsync();
    }

    private static string Code(string body) => body.Length > 0 && JsonNode.Parse(body) is JsonObject o && o["code"] is { } c ? c.GetValue<string>() : "(no code)";

    /// <summary>Every ledger entry of every delivery: a refused request records nothing anywhere.</summary>
    private async Task<int> LedgerCount()
    {
        var n = 0;
        foreach (var id in new[] { _t.A1, _t.B1, _t.BX, _t.C1, _t.D1 }) n += (await _t.Portal.Engine.Ledger.ReadAsync(id, default)).Count;
        return n;
    }

    private async Task<(int Status, string Body)> Raw(HttpMethod method, string path, string person, object? body = null)
    {
        using var http = _t.Portal.Client();
        using var res = await http.SendAsync(_t.Portal.Request(method, path, person, body));
        return ((int)res.StatusCode, await res.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// <paramref name="person"/>'s request naming <paramref name="real"/> (in place of <c>{x}</c>) is
    /// answered exactly like the same request naming <paramref name="unknown"/> that does not
    /// exist: same status, and the same body once the name is masked; and that answer is
    /// <paramref name="status"/> with <paramref name="code"/>.
    /// </summary>
    private async Task SameAsUnknown(string person, HttpMethod method, string template, string real, string unknown, object? body, int status, string code)
    {
        var (s1, b1) = await Raw(method, template.Replace("{x}", real, StringComparison.Ordinal), person, body);
        var (s2, b2) = await Raw(method, template.Replace("{x}", unknown, StringComparison.Ordinal), person, body);
        var what = $"{person}: {method} {template} with another tenant's {real}";
        Assert.That((s1, Code(b1)), Is.EqualTo((status, code)), $"{what}: {b1}");
        Assert.That((s1, b1.Replace(real, "{x}", StringComparison.Ordinal)), Is.EqualTo((s2, b2.Replace(unknown, "{x}", StringComparison.Ordinal))),
            $"{what} is answered exactly like an unknown one (no existence oracle)");
    }

    private Task SameAsUnknownDelivery(string person, HttpMethod method, string suffix, Guid real, object? body) =>
        SameAsUnknown(person, method, "/api/portal/deliveries/{x}" + suffix, real.ToString(), Guid.NewGuid().ToString(), body, 404, "LC-UNKNOWN-DELIVERY");

    /// <summary>The body names nothing of land-b (its pipelines and deliveries).</summary>
    private void NothingOfLandB(string body, string what)
    {
        foreach (var secret in new[] { _t.B, _t.B1.ToString(), _t.BX.ToString(), _t.D1.ToString() })
            Assert.That(body, Does.Not.Contain(secret), $"{what} shows land-b's {secret}");
    }

    private sealed record RouteCase(string Route, Func<Task> OtherTenant, Func<Task> OwnTenant);

    private static readonly HttpMethod Get = HttpMethod.Get, Post = HttpMethod.Post;

    /// <summary>One case per portal route, in lifecycle order (the own-tenant checks move A1 and B1 along).</summary>
    private List<RouteCase> RouteCases()
    {
        Guid? bertRun = null;
        return
        [
            new("GET /api/portal/me", async () =>
            {
                var (status, body) = await Raw(Get, "/api/portal/me", Anja);
                Assert.That(status, Is.EqualTo(200));
                NothingOfLandB(body, "Anja's /me");
            }, async () =>
            {
                var me = JsonNode.Parse((await Raw(Get, "/api/portal/me", Anja)).Body)!;
                Assert.That(me["tenants"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EqualTo(new[] { "land-a" }));
                Assert.That(me["pipelines"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EquivalentTo(new[] { _t.A, _t.C }), "every pipeline of her tenant");
                me = JsonNode.Parse((await Raw(Get, "/api/portal/me", Olga)).Body)!;
                Assert.That(me["tenants"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EqualTo(new[] { "*" }));
            }),
            new("GET /api/portal/board", async () =>
            {
                foreach (var person in new[] { Anja, Alma, Arne })
                {
                    var (status, body) = await Raw(Get, "/api/portal/board", person);
                    Assert.That(status, Is.EqualTo(200));
                    NothingOfLandB(body, person + "'s board");
                }

                // Another tenant's pipeline is answered like an unknown one: an empty board.
                var (s1, named) = await Raw(Get, "/api/portal/board?pipeline=" + _t.B, Anja);
                var (s2, unknown) = await Raw(Get, "/api/portal/board?pipeline=no-such-pipeline", Anja);
                Assert.That((s1, JsonNode.Parse(named)!["pipelines"]!.ToJsonString()), Is.EqualTo((s2, JsonNode.Parse(unknown)!["pipelines"]!.ToJsonString())));
                Assert.That(JsonNode.Parse(named)!["pipelines"]!.AsArray(), Is.Empty);
            }, async () =>
            {
                var (_, body) = await Raw(Get, "/api/portal/board", Arne);
                Assert.That(body, Does.Contain(_t.A1.ToString()).And.Contain(_t.C1.ToString()), "an auditor of land-a sees every pipeline of land-a");
                (_, body) = await Raw(Get, "/api/portal/board", Bert);
                Assert.That(body, Does.Contain(_t.B1.ToString()).And.Not.Contain(_t.A1.ToString()).And.Not.Contain(_t.A));
                (_, body) = await Raw(Get, "/api/portal/board", Olga);
                Assert.That(body, Does.Contain(_t.A1.ToString()).And.Contain(_t.B1.ToString()), "operator-wide: both tenants");
            }),
            new("POST /api/portal/pipelines/{name}/run", async () =>
            {
                await SameAsUnknown(Anja, Post, "/api/portal/pipelines/{x}/run", _t.B, "no-such-pipeline", new { }, 404, "RUN-UNKNOWN-PIPELINE");
                var (_, body) = await Raw(Post, "/api/portal/pipelines/no-such-pipeline/run", Anja, new { });
                NothingOfLandB(body, "the list of known pipelines");
            }, async () =>
            {
                var (status, body) = await Raw(Post, $"/api/portal/pipelines/{_t.B}/run", Bert, new { });
                Assert.That(status, Is.EqualTo(202), body);
                bertRun = Guid.Parse(JsonNode.Parse(body)!["id"]!.GetValue<string>());
                Assert.That((await _t.Portal.Server.Runs.WaitAsync(bertRun.Value, default))!.Status, Is.EqualTo("finished"));
            }),
            new("GET /api/portal/runs/{id:guid}", async () =>
            {
                Assert.That(bertRun, Is.Not.Null, "the run case comes first");
                await SameAsUnknown(Anja, Get, "/api/portal/runs/{x}", bertRun!.Value.ToString(), Guid.NewGuid().ToString(), null, 404, "RUN-UNKNOWN");
            }, async () =>
            {
                var (status, body) = await Raw(Get, $"/api/portal/runs/{bertRun}", Bert);
                Assert.That((status, JsonNode.Parse(body)!["pipeline"]!.GetValue<string>()), Is.EqualTo((200, _t.B)));
            }),
            new("POST /api/portal/deliveries/{id:guid}/promote", async () =>
            {
                await SameAsUnknownDelivery(Bert, Post, "/promote", _t.A1, new { stage = "Abnahme" });
                await SameAsUnknownDelivery(Anja, Post, "/promote", _t.BX, new { stage = "Abnahme" });
                await SameAsUnknownDelivery(Anja, Post, "/promote", _t.B1, new { stage = "Abnahme" });
            }, async () =>
            {
                Assert.That((await Raw(Post, $"/api/portal/deliveries/{_t.A1}/promote", Anja, new { stage = "Abnahme" })).Status, Is.EqualTo(201));
                Assert.That((await Raw(Post, $"/api/portal/deliveries/{_t.B1}/promote", Bert, new { stage = "Abnahme" })).Status, Is.EqualTo(201));
            }),
            new("GET /api/portal/approvals", async () =>
            {
                foreach (var person in new[] { Alma, Arne, Anja })
                {
                    var (status, body) = await Raw(Get, "/api/portal/approvals", person);
                    Assert.That(status, Is.EqualTo(200));
                    NothingOfLandB(body, person + "'s approvals");
                }
            }, async () =>
            {
                var (_, body) = await Raw(Get, "/api/portal/approvals", Alma);
                Assert.That(body, Does.Contain(_t.A1.ToString()));
                (_, body) = await Raw(Get, "/api/portal/approvals", Bea);
                Assert.That(body, Does.Contain(_t.B1.ToString()).And.Not.Contain(_t.A1.ToString()));
            }),
            new("GET /api/portal/deliveries/{id:guid}", async () =>
            {
                await SameAsUnknownDelivery(Bert, Get, "", _t.A1, null);
                await SameAsUnknownDelivery(Arne, Get, "", _t.B1, null);
                await SameAsUnknownDelivery(Arne, Get, "", _t.BX, null);
            }, async () =>
            {
                Assert.That((await Raw(Get, $"/api/portal/deliveries/{_t.A1}", Arne)).Status, Is.EqualTo(200), "an auditor of land-a reads A1");
                Assert.That((await Raw(Get, $"/api/portal/deliveries/{_t.B1}", Olga)).Status, Is.EqualTo(200), "an operator-wide auditor reads B1");
                Assert.That((await Raw(Get, $"/api/portal/deliveries/{_t.A1}", Olga)).Status, Is.EqualTo(200));
            }),
            new("POST /api/portal/deliveries/{id:guid}/statement", async () =>
            {
                await SameAsUnknownDelivery(Bert, Post, "/statement", _t.A1, new { stage = "Abnahme" });
                await SameAsUnknownDelivery(Alma, Post, "/statement", _t.B1, new { stage = "Abnahme" });
            }, async () =>
            {
                var (status, body) = await Raw(Post, $"/api/portal/deliveries/{_t.A1}/statement", Alma, new { stage = "Abnahme", comment = "ok" });
                Assert.That(status, Is.EqualTo(200), body);
                Assert.That(body, Does.Contain(_t.DigestA), "the statement names A1's digest");
            }),
            new("POST /api/portal/deliveries/{id:guid}/approve", async () =>
            {
                await SameAsUnknownDelivery(Bert, Post, "/approve", _t.A1, new { stage = "Abnahme", comment = "fremd" });
                await SameAsUnknownDelivery(Alma, Post, "/approve", _t.B1, new { stage = "Abnahme", comment = "fremd" });
                // A person of another tenant is no name one can enter a Freigabe for: answered as an unlisted name.
                var path = $"/api/portal/deliveries/{_t.A1}/approve";
                var (s1, b1) = await Raw(Post, path, Anja, new { stage = "Abnahme", comment = "für Bea", onBehalfOf = Bea });
                var (s2, b2) = await Raw(Post, path, Anja, new { stage = "Abnahme", comment = "für Bea", onBehalfOf = "Niemand Unbekannt" });
                Assert.That((s1, Code(b1)), Is.EqualTo((400, "LC-UNKNOWN-PERSON")), b1);
                Assert.That((s1, b1.Replace(Bea, "{x}", StringComparison.Ordinal)), Is.EqualTo((s2, b2.Replace("Niemand Unbekannt", "{x}", StringComparison.Ordinal))));
            }, async () =>
            {
                var (status, body) = await Raw(Post, $"/api/portal/deliveries/{_t.A1}/approve", Alma, new { stage = "Abnahme", digests = new[] { _t.DigestA }, comment = "ok" });
                Assert.That((status, JsonNode.Parse(body)!["ruleComplete"]?.GetValue<bool>()), Is.EqualTo((200, (bool?)true)), body);
                Assert.That((await Raw(Post, $"/api/portal/deliveries/{_t.A1}/promote", Anja, new { stage = "Produktion" })).Status, Is.EqualTo(201), "a request to refuse next");
            }),
            new("POST /api/portal/deliveries/{id:guid}/reject", async () =>
            {
                await SameAsUnknownDelivery(Bert, Post, "/reject", _t.A1, new { stage = "Produktion", comment = "fremd" });
                await SameAsUnknownDelivery(Alma, Post, "/reject", _t.B1, new { stage = "Abnahme", comment = "fremd" });
            }, async () =>
            {
                var (status, body) = await Raw(Post, $"/api/portal/deliveries/{_t.A1}/reject", Alma, new { stage = "Produktion", comment = "Abnahmetest fehlgeschlagen" });
                Assert.That((status, JsonNode.Parse(body)!["delivery"]?["state"]?.GetValue<string>()), Is.EqualTo((200, (string?)"rejected")), body);
            }),
            new("POST /api/portal/deliveries/{id:guid}/withdraw", async () =>
            {
                await SameAsUnknownDelivery(Anja, Post, "/withdraw", _t.B1, new { reason = "fremd" });
                await SameAsUnknownDelivery(Arne, Post, "/withdraw", _t.B1, new { reason = "fremd" });
                await SameAsUnknownDelivery(Bert, Post, "/withdraw", _t.A1, new { reason = "fremd" });
            }, async () =>
            {
                var (status, body) = await Raw(Post, $"/api/portal/deliveries/{_t.B1}/withdraw", Bert, new { reason = "Sicherheitslücke" });
                Assert.That((status, JsonNode.Parse(body)!["state"]?.GetValue<string>()), Is.EqualTo((200, (string?)"withdrawn")), body);
            }),
        ];
    }

    [Test]
    public void Every_portal_route_has_a_tenant_scoping_case()
    {
        Assert.That(_t.Portal.Server.PortalRoutes, Is.Not.Empty);
        Assert.That(RouteCases().Select(c => c.Route).Order(StringComparer.Ordinal), Is.EqualTo(_t.Portal.Server.PortalRoutes),
            "every route the portal maps needs a case in RouteCases (and every case a route)");
    }

    [Test]
    public async Task On_every_portal_route_another_tenants_delivery_is_an_unknown_one_and_the_own_tenant_may_act()
    {
        foreach (var c in RouteCases())
        {
            var before = await LedgerCount();
            await c.OtherTenant();
            Assert.That(await LedgerCount(), Is.EqualTo(before), $"{c.Route}: a request across tenants records nothing");
            await c.OwnTenant();
        }

        Assert.That(string.Join("\n", _t.Portal.Log.Lines), Does.Contain("LC-UNKNOWN-DELIVERY"), "the refusals are logged with their code");
    }
}
