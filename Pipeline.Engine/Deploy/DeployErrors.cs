namespace Pipeline.Engine.Deploy;

/// <summary>
/// Stable codes of deployment failures (stage environments, GitOps, verification). A failed check,
/// deployment or verification marks the stage failed with the code and blocks the promotion into
/// the next stage; <see cref="DeployException.IsTransient"/> marks outages of our own
/// infrastructure (VCS B unreachable), which are retried on the next pass instead.
/// </summary>
public static class DeployErrors
{
    /// <summary>The environment repository refused the push (permissions, a protected branch, a hook, or it kept moving).</summary>
    public const string PushRejected = "DEPLOY-GITOPS-PUSH-REJECTED";

    /// <summary>The environment repository could not be reached or read (transient).</summary>
    public const string Unreachable = "DEPLOY-GITOPS-UNREACHABLE";

    /// <summary>The commit signing key cannot sign (missing, encrypted, not Ed25519).</summary>
    public const string SigningKey = "DEPLOY-GITOPS-SIGNING-KEY";

    /// <summary>The rendered manifests cannot be written under the stage's path (unsafe name, too large).</summary>
    public const string BadOutput = "DEPLOY-GITOPS-OUTPUT";

    /// <summary>The HTTP probe did not see the expected status and version before its timeout.</summary>
    public const string ProbeFailed = "DEPLOY-PROBE-FAILED";

    /// <summary>The delivery's checked tree could not be read from VCS B (transient when VCS B is down).</summary>
    public const string DeliveryTree = "DEPLOY-DELIVERY-TREE";

    /// <summary>The delivery has no deployment description, but the stage has an environment.</summary>
    public const string NoDeployment = "DEPLOY-NO-DEPLOYMENT";

    /// <summary>The delivery's manifests break the operator's rules (every violation is listed).</summary>
    public const string ManifestRejected = "DEPLOY-MANIFEST-REJECTED";

    /// <summary>The Docker stage's acceptance tests failed or the Docker engine failed.</summary>
    public const string DockerFailed = "DEPLOY-DOCKER-FAILED";

    /// <summary>The delivery failed its current stage's check, deployment or verification: it goes no further.</summary>
    public const string StageFailed = "DEPLOY-STAGE-FAILED";

    /// <summary>The delivery's current stage is not verified yet (deployment pending or paused by an outage).</summary>
    public const string StageUnverified = "DEPLOY-STAGE-UNVERIFIED";

    /// <summary>Something the engine did not expect (a bug): the stage is not marked verified.</summary>
    public const string Internal = "DEPLOY-INTERNAL";
}

/// <summary>A deployment step failed, with its stable code.</summary>
public sealed class DeployException(string code, string message, bool isTransient = false, Exception? inner = null)
    : PipelineException(code, message, inner)
{
    /// <summary>An outage of our infrastructure (VCS B, a Docker engine): retry on the next pass; the delivery is not at fault.</summary>
    public bool IsTransient { get; } = isTransient;
}
