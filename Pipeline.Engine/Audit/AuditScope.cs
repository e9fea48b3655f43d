using Pipeline.Engine.Tenancy;

namespace Pipeline.Engine.Audit;

/// <summary>
/// Which tenants' entries an auditor (API token) or an operator's command (<c>--tenant</c>) may see:
/// all of them, or the pipelines of some tenants. An entry belongs to the tenant of the pipeline
/// named in its <em>signed</em> statement (never a lookup column). What carries only hashes and
/// counts (checkpoints, inclusion and consistency proofs, the whole log's verification) stays global.
/// </summary>
public sealed class AuditScope
{
    /// <summary>The stable code of an unknown tenant id (<c>--tenant</c>).</summary>
    public const string UnknownTenant = "TENANT-UNKNOWN";

    private readonly HashSet<string>? _pipelines;

    private AuditScope(IReadOnlyList<string> tenants, HashSet<string>? pipelines)
    {
        Tenants = tenants;
        _pipelines = pipelines;
    }

    /// <summary>Every tenant (and, without tenants, everything).</summary>
    public static AuditScope Everything { get; } = new([], null);

    /// <summary>True for <see cref="Everything"/>.</summary>
    public bool All => _pipelines is null;

    /// <summary>The tenant ids of a scoped view (empty for <see cref="Everything"/>).</summary>
    public IReadOnlyList<string> Tenants { get; }

    /// <summary>The pipelines in scope, sorted; null for <see cref="Everything"/>.</summary>
    public IReadOnlyList<string>? Pipelines => _pipelines?.Order(StringComparer.Ordinal).ToList();

    /// <summary>Whether an entry of <paramref name="pipeline"/> (from its signed statement) is in scope. Unknown pipelines are only in <see cref="Everything"/>.</summary>
    public bool Covers(string? pipeline) => _pipelines is null || (pipeline is not null && _pipelines.Contains(pipeline));

    /// <summary>The scope of the tenants <paramref name="ids"/> (each must be configured).</summary>
    /// <exception cref="PipelineException">TENANT-UNKNOWN naming the first unknown id and the configured ones.</exception>
    public static AuditScope ForTenants(TenantDirectory directory, IReadOnlyCollection<string> ids)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (ids.Count == 0) throw new ArgumentException("a scope names at least one tenant", nameof(ids));
        var pipelines = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            var tenant = directory.Find(id) ?? throw new PipelineException(UnknownTenant, UnknownMessage(directory, id));
            pipelines.UnionWith(tenant.Pipelines);
        }

        return new AuditScope(ids.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(), pipelines);
    }

    /// <summary><c>--tenant ID</c> of a command: null is <see cref="Everything"/>.</summary>
    /// <exception cref="PipelineException">TENANT-UNKNOWN.</exception>
    public static AuditScope FromOption(TenantDirectory directory, string? tenant) =>
        tenant is null ? Everything : ForTenants(directory, [tenant]);

    /// <summary>Why <paramref name="id"/> is not a tenant, and what is.</summary>
    public static string UnknownMessage(TenantDirectory directory, string id) => directory.Configured
        ? $"'{id}' is not a tenant; engine.yaml 'tenants:' configures {string.Join(", ", directory.Tenants.Select(t => t.Id))}"
        : $"'{id}' is not a tenant: engine.yaml configures no 'tenants:'";

    public override string ToString() => All ? "all tenants" : "tenant " + string.Join(", ", Tenants);
}
