using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Ssh;

namespace Pipeline.Engine.Approvals;

/// <summary>
/// A person of the operator who may act on deliveries (from the people file, <c>people.file</c>).
/// </summary>
/// <param name="Name">Full name as it appears in approvals and the log (unique in the file).</param>
/// <param name="Roles">What the person may do.</param>
/// <param name="Pipelines">Pipeline names the person may act on; "*" is every pipeline.</param>
/// <param name="SshKey">The person's own SSH public key for signed approvals (sshsig, namespace <c>pipeline-freigabe</c>).</param>
/// <param name="OpenPgpKey">The person's own OpenPGP public key for signed approvals (detached signature).</param>
public sealed record Person(string Name, IReadOnlySet<Role> Roles, IReadOnlyList<string> Pipelines, SshPublicKey? SshKey, OpenPgpPublicKeyRing? OpenPgpKey)
{
    /// <summary>The armored OpenPGP public key as written in the people file (embedded in signed Freigaben for offline checks).</summary>
    public string? OpenPgpKeyText { get; init; }

    public bool Has(Role role) => Roles.Contains(role);

    public bool MayActOn(string pipeline) => Pipelines.Contains("*") || Pipelines.Contains(pipeline);

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
