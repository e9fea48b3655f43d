namespace Pipeline.Engine.Deploy;

/// <summary>
/// Where and how a stage runs a delivery, owned by the operator (engine.yaml or pipeline
/// <c>stages[].environment</c>), never by the delivery. A stage without an environment is
/// promotion only. <see cref="Parameters"/> are the operator's values for the parameters the
/// delivery's deployment section declares (replicas, config values, ingress host, …).
/// </summary>
public abstract record StageEnvironment(IReadOnlyDictionary<string, string> Parameters)
{
    /// <summary><c>gitops</c> or <c>docker</c>.</summary>
    public abstract string Kind { get; }

    /// <summary>Where the stage is, in words, for evidence and the board (never credentials).</summary>
    public abstract string Describe();

    /// <summary>
    /// The operator's manifest rules for this stage (<c>environment.rules</c>): the Pod Security
    /// Standard "restricted" always applies; the operator picks the allowed kinds and whether a
    /// read-only root filesystem is required.
    /// </summary>
    public Pipeline.Checkup.Manifests.ManifestPolicy Rules { get; init; } = Pipeline.Checkup.Manifests.ManifestPolicy.Restricted;

    /// <summary><c>environment.hosts</c>: the highest Schutzbedarf and the tenant it is dedicated to (null: not declared).</summary>
    public Tenancy.HostPolicy? Hosts { get; init; }

    /// <summary>Where the environment is configured (file and line of its mapping), for errors.</summary>
    public (string File, int Line) Source { get; init; }
}

/// <summary>
/// A GitOps stage: the engine commits the rendered, digest-pinned manifests under <see cref="Path"/>
/// on <see cref="Branch"/> of the environment repository in VCS B (signed with <see cref="SigningKeyFile"/>);
/// Argo CD or Flux in the stage's cluster applies them; <see cref="Probe"/> checks that it worked.
/// </summary>
/// <param name="Repository">The environment repository (http(s) URL in VCS B, no credentials in it).</param>
/// <param name="CredentialsFile">A <c>user:password</c> file for the repository (default: engine.yaml internalGit.credentialsFile).</param>
/// <param name="Path">The folder in the repository the stage's manifests live in (relative, '/'-separated).</param>
/// <param name="Namespace">The Kubernetes namespace the overlay puts everything into.</param>
/// <param name="SigningKeyFile">An unencrypted OpenSSH Ed25519 private key: every commit is SSH-signed with it.</param>
/// <param name="CommitterName">The author and committer name of the engine's commits.</param>
/// <param name="CommitterEmail">The author and committer e-mail (git verify-commit's allowed-signers principal).</param>
/// <param name="Probe">The HTTP probe that verifies the deployment, or null: the stage is verified once the commit is pushed.</param>
public sealed record GitOpsEnvironment(
    Uri Repository,
    string? CredentialsFile,
    string Branch,
    string Path,
    string Namespace,
    string SigningKeyFile,
    string CommitterName,
    string CommitterEmail,
    HttpProbe? Probe,
    IReadOnlyDictionary<string, string> Parameters) : StageEnvironment(Parameters)
{
    public override string Kind => "gitops";

    public override string Describe() => $"gitops {Repository} {Branch}:{Path} (namespace {Namespace})";
}

/// <summary>
/// An HTTP probe: GET <see cref="Url"/> until the status is <see cref="ExpectStatus"/> and the body
/// contains <see cref="ExpectVersion"/> (<c>{tag}</c> stands for the delivery's tag), or fail after
/// <see cref="Timeout"/>. Tries every <see cref="Interval"/> while Argo CD / Flux roll out.
/// </summary>
public sealed record HttpProbe(Uri Url, int ExpectStatus, string ExpectVersion, TimeSpan Timeout, TimeSpan Interval)
{
    /// <summary>The version string expected for a delivery tag.</summary>
    public string VersionFor(string tag) => ExpectVersion.Replace("{tag}", tag, StringComparison.Ordinal);
}

/// <summary>
/// A Docker stage: a Docker engine (its own socket or TCP endpoint: its own security zone) where
/// the engine pulls the delivery's images by digest, runs them hardened with these limits, waits
/// for health and runs the delivery's acceptance tests.
/// </summary>
/// <param name="Endpoint">unix:///path/docker.sock or tcp://host:port.</param>
/// <param name="Network">"none" (default) or the name of a stage network the operator created.</param>
/// <param name="MemoryBytes">Memory limit per container.</param>
/// <param name="Cpus">CPU limit per container (e.g. 0.5).</param>
/// <param name="User">Numeric uid[:gid] the containers run as (never 0), or null: the image's own numeric non-root user.</param>
/// <param name="HealthTimeout">How long a container may take to become healthy.</param>
/// <param name="TestTimeout">How long the acceptance tests may run at most (the delivery may ask for less).</param>
public sealed record DockerEnvironment(
    Uri Endpoint,
    string Network,
    long MemoryBytes,
    double Cpus,
    string? User,
    TimeSpan HealthTimeout,
    TimeSpan TestTimeout,
    IReadOnlyDictionary<string, string> Parameters) : StageEnvironment(Parameters)
{
    public override string Kind => "docker";

    public override string Describe() => $"docker {Endpoint} (network {Network})";

    /// <summary>The Docker runner's settings for this stage; <paramref name="registry"/> is the stage registry's host[:port].</summary>
    public Docker.DockerStageSettings ToRunnerSettings(string registry) => new()
    {
        Endpoint = Endpoint.ToString(),
        Registry = registry,
        Network = Network,
        MemoryBytes = MemoryBytes,
        Cpus = Cpus,
        User = User,
        HealthTimeout = HealthTimeout,
        TestTimeout = TestTimeout,
    };
}
