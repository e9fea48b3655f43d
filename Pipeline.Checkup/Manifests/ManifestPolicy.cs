namespace Pipeline.Checkup.Manifests;

/// <summary>
/// The operator's rules for a delivery's Kubernetes manifests. The Pod Security Standard
/// "restricted" is always enforced; these settings add to it.
/// </summary>
public sealed record ManifestPolicy
{
    /// <summary>Kinds a delivery may ship when the operator names none.</summary>
    public static readonly IReadOnlyList<string> DefaultAllowedKinds =
    [
        "ConfigMap", "CronJob", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Job", "NetworkPolicy",
        "PersistentVolumeClaim", "PodDisruptionBudget", "Service", "ServiceAccount", "StatefulSet",
    ];

    public static readonly ManifestPolicy Restricted = new();

    /// <summary>Kinds that may appear (case-sensitive, as in <c>kind:</c>).</summary>
    public IReadOnlyList<string> AllowedKinds { get; init; } = DefaultAllowedKinds;

    /// <summary>Every container must set <c>securityContext.readOnlyRootFilesystem: true</c>.</summary>
    public bool RequireReadOnlyRootFilesystem { get; init; } = true;
}

/// <summary>What a container's <c>image:</c> must be.</summary>
public abstract record ImageRule
{
    private ImageRule() { }

    /// <summary>Supplier manifests: exactly one of the names delivery.yaml declares (no tag, no digest, no registry).</summary>
    public sealed record DeclaredNames(IReadOnlyCollection<string> Names) : ImageRule;

    /// <summary>Rendered manifests: exactly one of these <c>registry/repo@sha256:…</c> references.</summary>
    public sealed record Pinned(IReadOnlyCollection<string> References) : ImageRule;
}

/// <summary>One broken rule, where it is and what to do. <see cref="Code"/> is stable (<c>DEPLOY-MANIFEST-…</c>).</summary>
public sealed record ManifestViolation(string Code, string File, int Line, int Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Code}: {Message}";
}

/// <summary>The manifests break the rules; <see cref="Violations"/> holds every one found.</summary>
public sealed class ManifestCheckException(IReadOnlyList<ManifestViolation> violations)
    : CheckupException(ErrorCode, Format(violations))
{
    public const string ErrorCode = "DEPLOY-MANIFEST-REJECTED";

    public IReadOnlyList<ManifestViolation> Violations { get; } = violations;

    private static string Format(IReadOnlyList<ManifestViolation> v) =>
        $"{v.Count} manifest violation(s):" + Environment.NewLine + string.Join(Environment.NewLine, v.Select(x => "  " + x));
}
