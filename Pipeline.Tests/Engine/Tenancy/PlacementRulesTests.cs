using Pipeline.Engine.Tenancy;

namespace Pipeline.Tests.Engine.Tenancy;

public class PlacementRulesTests
{
    private const string Env = "the environment of stage Abnahme";

    private static HostPolicy Shared(Schutzbedarf max) => new(max, null, "engine.yaml", 7);

    private static HostPolicy Dedicated(string tenant, Schutzbedarf max) => new(max, tenant, "engine.yaml", 7);

    // The whole matrix: application level × (shared | dedicated to own | dedicated to other) × environment level.
    private static IEnumerable<TestCaseData> Matrix()
    {
        foreach (var app in Enum.GetValues<Schutzbedarf>())
        {
            foreach (var max in Enum.GetValues<Schutzbedarf>())
            {
                // shared: never sehr-hoch; otherwise up to its level.
                var sharedCode = app == Schutzbedarf.SehrHoch ? TenancyErrors.NotDedicated : app > max ? TenancyErrors.SchutzbedarfTooHigh : null;
                yield return new TestCaseData(app, Shared(max), sharedCode, sharedCode is null ? PlacementDecision.RuleShared : null)
                    .SetName($"{app} into shared up to {max}");

                // dedicated to the own tenant: up to its level, sehr-hoch included.
                var ownCode = app > max ? TenancyErrors.SchutzbedarfTooHigh : null;
                yield return new TestCaseData(app, Dedicated("land-a", max), ownCode, ownCode is null ? PlacementDecision.RuleDedicated : null)
                    .SetName($"{app} into dedicated to own tenant up to {max}");

                // dedicated to another tenant: never, whatever the levels.
                yield return new TestCaseData(app, Dedicated("land-b", max), TenancyErrors.NotDedicated, null)
                    .SetName($"{app} into dedicated to another tenant up to {max}");
            }
        }
    }

    [TestCaseSource(nameof(Matrix))]
    public void The_placement_matrix(Schutzbedarf app, HostPolicy hosts, string? code, string? rule)
    {
        var d = PlacementRules.Decide("land-a", app, hosts, Env);
        Assert.That(d.Allowed, Is.EqualTo(code is null), d.Message);
        Assert.That(d.Code, Is.EqualTo(code));
        if (rule is not null) Assert.That(d.Rule, Is.EqualTo(rule));
        if (code is not null) Assert.That(d.Message, Does.Contain(Env).And.Not.Contain(code), "the message names the environment; the code travels beside it (callers print CODE: message)");
    }

    [Test]
    public void Sehr_hoch_into_a_shared_environment_says_why_and_what_to_do()
    {
        var d = PlacementRules.Decide("land-a", Schutzbedarf.SehrHoch, Shared(Schutzbedarf.SehrHoch), Env);
        Assert.That((d.Allowed, d.Code, d.Rule), Is.EqualTo((false, TenancyErrors.NotDedicated, "sehr-hoch-needs-dedicated")));
        Assert.That(d.Message, Does.Contain("only into environments dedicated to its tenant").And.Contain("hosts.dedicatedTo is 'land-a'"));
    }

    [Test]
    public void Another_tenants_environment_is_refused_naming_its_owner()
    {
        var d = PlacementRules.Decide("land-a", Schutzbedarf.Normal, Dedicated("land-b", Schutzbedarf.SehrHoch), Env);
        Assert.That((d.Code, d.Rule), Is.EqualTo((TenancyErrors.NotDedicated, "dedicated-to-other-tenant")));
        Assert.That(d.Message, Does.Contain("dedicated to tenant 'land-b', not to 'land-a'"));
    }

    [Test]
    public void Too_high_for_a_shared_environment_names_both_levels()
    {
        var d = PlacementRules.Decide("land-a", Schutzbedarf.Hoch, Shared(Schutzbedarf.Normal), Env);
        Assert.That((d.Code, d.Rule), Is.EqualTo((TenancyErrors.SchutzbedarfTooHigh, "shared-max-exceeded")));
        Assert.That(d.Message, Does.Contain("Schutzbedarf hoch").And.Contain("shared, up to normal").And.Contain("at least hoch"));
    }

    [TestCase(null, Schutzbedarf.Normal, true, "no-tenant")]
    [TestCase("land-a", null, true, "no-schutzbedarf")]
    [TestCase("land-a", Schutzbedarf.Normal, false, "no-hosts-policy")]
    public void What_cannot_be_decided_is_refused(string? tenant, Schutzbedarf? level, bool withHosts, string rule)
    {
        var d = PlacementRules.Decide(tenant, level, withHosts ? Shared(Schutzbedarf.SehrHoch) : null, Env);
        Assert.That((d.Allowed, d.Code, d.Rule), Is.EqualTo((false, TenancyErrors.PlacementRefused, rule)));
    }

    [Test]
    public void The_evidence_names_tenant_level_environment_and_rule()
    {
        var hosts = Dedicated("land-a", Schutzbedarf.SehrHoch);
        var d = PlacementRules.Decide("land-a", Schutzbedarf.SehrHoch, hosts, Env);
        var e = d.Evidence("land-a", Schutzbedarf.SehrHoch, hosts);
        Assert.That((e["placement.tenant"], e["placement.schutzbedarf"], e["placement.rule"], e["placement.decision"]),
            Is.EqualTo(("land-a", "sehr-hoch", PlacementDecision.RuleDedicated, "allowed")));
        Assert.That(e["placement.environment"], Is.EqualTo("dedicated to tenant 'land-a', up to sehr-hoch"));
    }
}
