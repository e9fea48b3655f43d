using Pipeline.Engine.Configuration;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Engine.Approvals;

/// <summary>
/// A person's <c>tenants:</c> in the people file, checked against engine.yaml <c>tenants:</c>
/// (every problem added with file and line): without tenants the key is an error; with tenants
/// it is required, names known tenants (or <c>"*"</c> alone for operator-wide staff), and no
/// pipeline in the person's <c>pipelines</c> belongs to another tenant.
/// </summary>
internal static class PersonTenancy
{
    /// <summary>The person's tenant boundary (<see cref="Person.TenantPipelines"/>): null without tenants or for <c>"*"</c>.</summary>
    public static IReadOnlySet<string>? Check(MappingReader m, TenantDirectory tenants, IReadOnlyList<string> memberOf, IReadOnlyList<string> pipelines)
    {
        if (!tenants.Configured)
        {
            if (m.Has("tenants"))
                m.KeyError("tenants", $"'{m.Path}.tenants' names tenants, but engine.yaml configures none", "add 'tenants:' to engine.yaml, or remove 'tenants' from the people file");
            return null;
        }

        var known = "known tenants: " + string.Join(", ", tenants.Tenants.Select(t => t.Id)) + "; \"*\" for operator-wide staff";
        if (memberOf.Count == 0)
        {
            m.KeyError("tenants", $"'{m.Path}' belongs to no tenant (required when engine.yaml configures tenants)", "add 'tenants: [<tenant id>]', or 'tenants: [\"*\"]' for operator-wide staff; " + known);
            return null;
        }

        if (memberOf.Contains("*"))
        {
            if (memberOf.Count > 1) m.KeyError("tenants", $"'{m.Path}.tenants' takes \"*\" alone or tenant ids, not both");
            return null;
        }

        var own = new List<Tenant>();
        foreach (var id in memberOf)
        {
            if (tenants.Find(id) is { } t) own.Add(t);
            else m.KeyError("tenants", $"unknown tenant '{id}' in '{m.Path}.tenants'", known);
        }

        if (memberOf.Distinct(StringComparer.Ordinal).Count() != memberOf.Count) m.KeyError("tenants", $"'{m.Path}.tenants' names a tenant twice");
        var ids = string.Join(", ", memberOf);
        foreach (var p in pipelines.Where(p => p != "*"))
        {
            // A name of no tenant is no configured pipeline (the tenancy check requires every pipeline in a tenant): it grants nothing.
            if (tenants.TenantOf(p) is { } owner && !memberOf.Contains(owner.Id))
                m.KeyError("pipelines", $"pipeline '{p}' in '{m.Path}.pipelines' belongs to tenant '{owner.Id}', and the person does not (tenants: {ids})",
                    $"add '{owner.Id}' to the person's tenants, or remove the pipeline");
        }

        return own.SelectMany(t => t.Pipelines).ToHashSet(StringComparer.Ordinal);
    }
}
