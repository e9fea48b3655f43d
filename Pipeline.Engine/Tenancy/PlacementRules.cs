namespace Pipeline.Engine.Tenancy;

/// <summary>The stable codes of a refused placement.</summary>
public static class TenancyErrors
{
    /// <summary>The placement cannot be decided (no tenant, no Schutzbedarf or no hosts policy): refused, fail closed.</summary>
    public const string PlacementRefused = "TENANT-PLACEMENT-REFUSED";

    /// <summary>The application's Schutzbedarf is higher than the environment may host.</summary>
    public const string SchutzbedarfTooHigh = "TENANT-SCHUTZBEDARF-TOO-HIGH";

    /// <summary>The environment is dedicated to another tenant, or a sehr-hoch application meets a shared environment.</summary>
    public const string NotDedicated = "TENANT-NOT-DEDICATED";
}

/// <summary>
/// The decision whether an application may be deployed into an environment: allowed with the rule
/// that allowed it, or refused with a stable code and a message an operator can act on.
/// </summary>
public sealed record PlacementDecision(bool Allowed, string? Code, string Rule, string Message)
{
    /// <summary>The rule ids of an allowed placement.</summary>
    public const string RuleDedicated = "dedicated-to-tenant";

    public const string RuleShared = "shared-up-to-level";

    /// <summary>The evidence of the decision for the signed statement.</summary>
    public IReadOnlyDictionary<string, string> Evidence(string tenant, Schutzbedarf? schutzbedarf, HostPolicy? hosts) => new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["placement.tenant"] = tenant,
        ["placement.schutzbedarf"] = schutzbedarf?.Name() ?? "",
        ["placement.environment"] = hosts?.Describe() ?? "",
        ["placement.rule"] = Rule,
        ["placement.decision"] = Allowed ? "allowed" : "refused " + Code,
        ["placement.detail"] = Message,
    };
}

/// <summary>
/// The placement rules (Schutzbedarf after BSI IT-Grundschutz):
/// <list type="bullet">
/// <item>an environment dedicated to another tenant hosts nothing of this one (<see cref="TenancyErrors.NotDedicated"/>);</item>
/// <item>sehr hoch only into an environment dedicated to the application's own tenant (<see cref="TenancyErrors.NotDedicated"/>);</item>
/// <item>an application never above the environment's maxSchutzbedarf (<see cref="TenancyErrors.SchutzbedarfTooHigh"/>);</item>
/// <item>anything undecidable is refused (<see cref="TenancyErrors.PlacementRefused"/>).</item>
/// </list>
/// </summary>
public static class PlacementRules
{
    public static PlacementDecision Decide(string? tenant, Schutzbedarf? schutzbedarf, HostPolicy? hosts, string environment)
    {
        if (tenant is null)
            return Refuse(TenancyErrors.PlacementRefused, "no-tenant", $"the application belongs to no tenant, so it may not be deployed into {environment}",
                "add the pipeline to a tenant in engine.yaml 'tenants:'");
        if (schutzbedarf is not { } s)
            return Refuse(TenancyErrors.PlacementRefused, "no-schutzbedarf", $"the application of tenant '{tenant}' declares no Schutzbedarf, so it may not be deployed into {environment}",
                "declare 'schutzbedarf: normal|hoch|sehr-hoch' in the pipeline definition");
        if (hosts is null)
            return Refuse(TenancyErrors.PlacementRefused, "no-hosts-policy", $"{environment} declares no 'hosts:' policy, so no application may be deployed into it",
                "the operator declares 'environment.hosts: { maxSchutzbedarf, dedicatedTo }' for the stage");
        if (hosts.DedicatedTo is { } owner && owner != tenant)
            return Refuse(TenancyErrors.NotDedicated, "dedicated-to-other-tenant", $"{environment} is dedicated to tenant '{owner}', not to '{tenant}'",
                "deploy into an environment dedicated to this tenant or a shared one");
        if (s == Schutzbedarf.SehrHoch && hosts.Shared)
            return Refuse(TenancyErrors.NotDedicated, "sehr-hoch-needs-dedicated", $"Schutzbedarf sehr-hoch (tenant '{tenant}') is deployed only into environments dedicated to its tenant; {environment} is shared",
                $"configure the stage with an environment whose hosts.dedicatedTo is '{tenant}'");
        if (s > hosts.MaxSchutzbedarf)
            return Refuse(TenancyErrors.SchutzbedarfTooHigh, hosts.Shared ? "shared-max-exceeded" : "dedicated-max-exceeded",
                $"Schutzbedarf {s.Name()} (tenant '{tenant}') is higher than {environment} may host ({hosts.Describe()})",
                $"use an environment with hosts.maxSchutzbedarf at least {s.Name()}");
        return hosts.Shared
            ? new PlacementDecision(true, null, PlacementDecision.RuleShared, $"{environment} is shared and hosts up to {hosts.MaxSchutzbedarf.Name()}; tenant '{tenant}' needs {s.Name()}")
            : new PlacementDecision(true, null, PlacementDecision.RuleDedicated, $"{environment} is dedicated to tenant '{tenant}' and hosts up to {hosts.MaxSchutzbedarf.Name()}; the application needs {s.Name()}");
    }

    private static PlacementDecision Refuse(string code, string rule, string why, string fix) =>
        new(false, code, rule, $"{why}; {fix}");
}
