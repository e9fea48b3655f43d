using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Tenancy;

/// <summary>One tenant (Mandant, e.g. a Behörde) of the operator: its id, its name and its pipelines.</summary>
public sealed record Tenant(string Id, string DisplayName, IReadOnlyList<string> Pipelines, string File, int Line);

/// <summary>
/// engine.yaml <c>tenants:</c>. Empty: the engine runs without tenants (no placement rules).
/// Configured: every pipeline belongs to exactly one tenant and declares its Schutzbedarf, and
/// every stage environment declares what it hosts (<see cref="TenancyValidator"/>).
/// <code>
/// tenants:
///   - id: land-a
///     name: Landesamt A
///     pipelines: [fachverfahren, meldewesen]
/// </code>
/// </summary>
public sealed record TenantDirectory(IReadOnlyList<Tenant> Tenants)
{
    public static TenantDirectory Empty { get; } = new([]);

    public bool Configured => Tenants.Count > 0;

    public Tenant? Find(string id) => Tenants.FirstOrDefault(t => t.Id == id);

    /// <summary>The tenant a pipeline belongs to, or null.</summary>
    public Tenant? TenantOf(string pipeline) => Tenants.FirstOrDefault(t => t.Pipelines.Contains(pipeline, StringComparer.Ordinal));

    /// <summary>The <c>tenants:</c> list of <paramref name="root"/> (absent: <see cref="Empty"/>), every error added to the reader's errors.</summary>
    public static TenantDirectory Parse(MappingReader root, string key = "tenants")
    {
        if (!root.Has(key)) return Empty;
        var items = root.MappingList(key, required: true);
        var tenants = new List<Tenant>();
        var owner = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var m in items)
        {
            var id = m.String("id", Definitions.PipelineDefinition.NamePattern, "tenant id (lowercase letters, digits and '-')", required: true);
            var name = m.String("name", required: true, hint: "the tenant's display name, e.g. Landesamt für Statistik");
            if (name is not null && (name.Trim().Length == 0 || name.Length > 128 || name.Any(char.IsControl)))
                m.KeyError("name", $"'{m.Path}.name' must be 1 to 128 printable characters");
            var pipelines = m.StringList("pipelines", required: true);
            m.Done();
            if (id is null || name is null) continue;
            if (id == "shared")
            {
                m.KeyError("id", $"'{m.Path}.id' must not be 'shared' (it marks shared environments)");
                continue;
            }

            if (tenants.Any(t => t.Id == id))
            {
                m.KeyError("id", $"tenant '{id}' is listed twice");
                continue;
            }

            foreach (var p in pipelines)
            {
                if (owner.TryGetValue(p, out var other))
                    m.KeyError("pipelines", $"pipeline '{p}' is in tenant '{other}' and in tenant '{id}'", "a pipeline belongs to exactly one tenant");
                else owner[p] = id;
            }

            tenants.Add(new Tenant(id, name.Trim(), pipelines, m.File, m.Line));
        }

        return new TenantDirectory(tenants);
    }
}
