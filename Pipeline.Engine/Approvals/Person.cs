using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Ssh;

namespace Pipeline.Engine.Approvals;

/// <summary>
/// A person of the operator who may act on deliveries (from the people file, <c>people.file</c>).
/// </summary>
/// <param name="Name">Full name as it appears in approvals and the log (unique in the file).</param>
/// <param name="Roles">What the person may do.</param>
/// <param name="Pipelines">Pipeline names the person may act on; "*" is every pipeline (of their tenants, when tenants are configured).</param>
/// <param name="SshKey">The person's own SSH public key for signed approvals (sshsig, namespace <c>pipeline-freigabe</c>).</param>
/// <param name="OpenPgpKey">The person's own OpenPGP public key for signed approvals (detached signature).</param>
public sealed record Person(string Name, IReadOnlySet<Role> Roles, IReadOnlyList<string> Pipelines, SshPublicKey? SshKey, OpenPgpPublicKeyRing? OpenPgpKey)
{
    /// <summary>The armored OpenPGP public key as written in the people file (embedded in signed Freigaben for offline checks).</summary>
    public string? OpenPgpKeyText { get; init; }

    /// <summary>The tenant ids the person belongs to (people file <c>tenants:</c>; <c>"*"</c>: operator-wide); empty without tenants.</summary>
    public IReadOnlyList<string> Tenants { get; init; } = [];

    /// <summary>
    /// The tenant boundary: every pipeline of the person's tenants. Null when there is none (no
    /// tenants configured, or a person of every tenant, <c>"*"</c>). Outside it nothing exists
    /// for the person: no delivery, run or pipeline is shown, and asking for one is answered as
    /// for an unknown id.
    /// </summary>
    public IReadOnlySet<string>? TenantPipelines { get; init; }

    public bool Has(Role role) => Roles.Contains(role);

    /// <summary>Whether the pipeline lies inside the person's tenants (always, without a tenant boundary).</summary>
    public bool InTenantScope(string pipeline) => TenantPipelines is null || TenantPipelines.Contains(pipeline);

    /// <summary>Within the person's tenants and in their <c>pipelines</c> list.</summary>
    public bool MayActOn(string pipeline) => InTenantScope(pipeline) && (Pipelines.Contains("*") || Pipelines.Contains(pipeline));

    /// <summary>The pipelines the person may act on, as far as they can be named: their tenants' pipelines intersected with their list.</summary>
    public IReadOnlyList<string> EffectivePipelines =>
        TenantPipelines is null ? Pipelines
        : Pipelines.Contains("*") ? TenantPipelines.Order(StringComparer.Ordinal).ToList()
        : Pipelines.Where(TenantPipelines.Contains).ToList();

    public string RolesText => string.Join(", ", Roles.Order().Select(r => r.ToString().ToLowerInvariant()));
}

/// <summary>
/// Who is acting: an authenticated person, and through what (the CLI with a token, the portal,
/// or the engine itself for automatic steps).
/// </summary>
/// <param name="Person">The authenticated person; null only for <see cref="Engine"/>.</param>
/// <param name="Channel">"cli", "portal", "api" or "engine": recorded with every action.</param>
public sealed record Actor(Person? Person, string Channel)
{
    /// <summary>The engine acting on its own (automatic first stage, resumed promotions).</summary>
    public static Actor Engine { get; } = new(null, "engine");

    public string Name => Person?.Name ?? "pipeline-engine";

    public bool IsEngine => Person is null;
}
