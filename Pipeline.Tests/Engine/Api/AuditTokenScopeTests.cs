using System.Security.Cryptography;
using System.Text;
using Pipeline.Engine;
using Pipeline.Engine.Api;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Tests.Engine.Api;

/// <summary>The scope of an auditor token: <c>tenants=ID[,ID…]</c> or <c>tenants=*</c>, required once tenants are configured.</summary>
public class AuditTokenScopeTests
{
    private static readonly TenantDirectory Tenants = new([
        new Tenant("land-a", "Landesamt A", ["fachverfahren", "meldewesen"], "engine.yaml", 10),
        new Tenant("land-b", "Landesamt B", ["kasse"], "engine.yaml", 14),
    ]);

    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    [Test]
    public void A_scoped_token_sees_its_tenants_pipelines_and_a_star_token_sees_all()
    {
        var tokens = AuditApiTokens.Parse($"{Hash("a")} Prüferin A tenants=land-a\n{Hash("ab")} tenants=land-a,land-b both\n{Hash("all")} rechnungshof tenants=*\n", "t", Tenants);
        var a = tokens.Find("a")!;
        Assert.That((a.Label, a.Scope.All, a.Scope.Tenants), Is.EqualTo(("Prüferin A", false, new[] { "land-a" })));
        Assert.That(a.Scope.Pipelines, Is.EqualTo(new[] { "fachverfahren", "meldewesen" }));
        Assert.That((a.Scope.Covers("meldewesen"), a.Scope.Covers("kasse"), a.Scope.Covers(null)), Is.EqualTo((true, false, false)));
        var ab = tokens.Find("ab")!;
        Assert.That((ab.Label, ab.Scope.Covers("kasse"), ab.Scope.Covers("fachverfahren"), ab.Scope.Covers("other")), Is.EqualTo(("both", true, true, false)));
        var all = tokens.Find("all")!;
        Assert.That((all.Label, all.Scope.All, all.Scope.Covers("anything")), Is.EqualTo(("rechnungshof", true, true)));
        Assert.That(tokens.Match("a"), Is.EqualTo("Prüferin A"), "Match still answers the label");
    }

    [Test]
    public void Without_tenants_an_unscoped_line_means_the_whole_log_as_before()
    {
        var tokens = AuditApiTokens.Parse($"{Hash("x")} alice\n{Hash("y")} tenants=*\n", "t");
        Assert.That((tokens.Find("x")!.Scope.All, tokens.Find("y")!.Scope.All), Is.EqualTo((true, true)));
    }

    [Test]
    public void With_tenants_every_line_must_say_its_scope_and_every_bad_line_is_reported_at_once()
    {
        var e = Assert.Throws<PipelineException>(() => AuditApiTokens.Parse(
            $"# auditors\n{Hash("x")} alice\n{Hash("y")} bob tenants=land-c\n{Hash("z")} tenants=land-a tenants=land-b\n{Hash("w")} tenants=land-a,,\n{Hash("v")} tenants=*,land-a\n", "auditors.sha256", Tenants))!;
        Assert.That(e.Code, Is.EqualTo(AuditApiTokens.ScopeError), "the first problem's code");
        Assert.That(e.Message, Does.StartWith("auditors.sha256 line 2: the token has no scope, but engine.yaml configures tenants; append 'tenants=ID[,ID…]'"));
        Assert.That(e.Message, Does.Contain("API-TOKEN-TENANT-UNKNOWN: auditors.sha256 line 3: 'land-c' is not a tenant; engine.yaml 'tenants:' configures land-a, land-b"));
        Assert.That(e.Message, Does.Contain("API-TOKEN-SCOPE: auditors.sha256 line 4: 'tenants=' is given 2 times"));
        Assert.That(e.Message, Does.Contain("API-TOKEN-SCOPE: auditors.sha256 line 5: 'tenants=land-a,,' is not a scope"));
        Assert.That(e.Message, Does.Contain("API-TOKEN-SCOPE: auditors.sha256 line 6: 'tenants=*,land-a' is not a scope"));
    }

    [Test]
    public void A_tenant_scope_without_configured_tenants_is_an_unknown_tenant()
    {
        var e = Assert.Throws<PipelineException>(() => AuditApiTokens.Parse($"{Hash("x")} tenants=land-a\n", "t"))!;
        Assert.That((e.Code, e.Message), Is.EqualTo((AuditApiTokens.UnknownTenantError, "t line 1: 'land-a' is not a tenant: engine.yaml configures no 'tenants:'")));
    }

    [Test]
    public void A_reload_replaces_the_scopes_of_a_running_token_set()
    {
        var live = AuditApiTokens.Parse($"{Hash("x")} alice tenants=land-a\n", "t", Tenants);
        live.Replace(AuditApiTokens.Parse($"{Hash("x")} alice tenants=land-b\n", "t", Tenants));
        Assert.That(live.Find("x")!.Scope.Tenants, Is.EqualTo(new[] { "land-b" }));
    }

    [Test]
    public void An_unknown_tenant_option_names_the_configured_tenants()
    {
        Assert.That(AuditScope.FromOption(Tenants, null).All, Is.True);
        var e = Assert.Throws<PipelineException>(() => AuditScope.FromOption(Tenants, "land-x"))!;
        Assert.That((e.Code, e.Message), Is.EqualTo((AuditScope.UnknownTenant, "'land-x' is not a tenant; engine.yaml 'tenants:' configures land-a, land-b")));
    }
}
