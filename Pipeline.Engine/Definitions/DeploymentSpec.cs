namespace Pipeline.Engine.Definitions;

/// <summary>
/// The <c>deployment:</c> section of <c>delivery.yaml</c>: the supplier's Kubernetes manifests, the
/// parameters the operator may adapt per stage (with defaults) and the acceptance tests. Hostile
/// input like the rest of the delivery: parsed strictly by <see cref="DeploymentSpecParser"/>.
/// </summary>
/// <param name="Manifests">Where the manifests are (relative folder) and whether it is a kustomize base.</param>
/// <param name="Parameters">What the operator's stage overlay may set, each with its default and where it applies.</param>
/// <param name="AcceptanceTests">The acceptance tests, or null when the delivery declares none.</param>
public sealed record DeploymentSpec(
    ManifestSource Manifests,
    IReadOnlyList<DeploymentParameter> Parameters,
    AcceptanceTestSpec? AcceptanceTests)
{
    public DeploymentParameter? Parameter(string name) => Parameters.FirstOrDefault(p => p.Name == name);
}

public enum ManifestLayout
{
    /// <summary>Every <c>*.yaml</c>/<c>*.yml</c> file directly in the folder (sorted by name).</summary>
    Plain,

    /// <summary>The folder holds a <c>kustomization.yaml</c> whose local <c>resources:</c> list the files (safe subset only).</summary>
    Kustomize,
}

/// <summary>The manifests folder, relative to the delivery root (no '..', no symbolic links).</summary>
public sealed record ManifestSource(string Folder, ManifestLayout Layout);

/// <summary>What a parameter is; decides which values are valid and which fields it may target.</summary>
public enum ParameterKind
{
    /// <summary>A whole number 0..1000; targets a field named <c>replicas</c>.</summary>
    Replicas,

    /// <summary>A CPU quantity (<c>250m</c>, <c>1</c>, <c>1.5</c>); targets a field below <c>resources.requests</c>/<c>resources.limits</c>.</summary>
    Cpu,

    /// <summary>A memory quantity (<c>256Mi</c>, <c>1Gi</c>); targets a field below <c>resources.requests</c>/<c>resources.limits</c>.</summary>
    Memory,

    /// <summary>A configuration value (text); targets <c>data.KEY</c> of a ConfigMap or an <c>env[name=X].value</c>.</summary>
    Config,

    /// <summary>The name of a Secret the operator provides; targets <c>secretKeyRef.name</c>, <c>secretRef.name</c> or <c>secretName</c>.</summary>
    SecretRef,

    /// <summary>A DNS host name; targets <c>host</c>/<c>hosts[N]</c> of an Ingress.</summary>
    IngressHost,
}

/// <summary>
/// One place in the manifests a parameter sets: the object (<see cref="Kind"/>, <see cref="Name"/>) and a
/// field path such as <c>spec.template.spec.containers[name=web].resources.limits.memory</c> (segments:
/// <c>key</c>, <c>[N]</c>, <c>[name=value]</c>).
/// </summary>
public sealed record ParameterTarget(string Kind, string Name, string Path);

/// <summary>A value the operator may set per stage; <see cref="Default"/> is rendered when the stage sets none.</summary>
/// <param name="Line">Where it was declared in delivery.yaml (for errors found later, at render time).</param>
public sealed record DeploymentParameter(string Name, ParameterKind Kind, string Default, IReadOnlyList<ParameterTarget> Targets, int Line);

/// <summary>
/// The acceptance tests: <see cref="Command"/> run in <see cref="Image"/> (one of the delivery's
/// <c>images:</c>, which may be a test image built from the delivery like any other), with the
/// delivery's test data mounted read-only and the declared mocks running beside it.
/// </summary>
/// <param name="Image">An image name from <c>images:</c>.</param>
/// <param name="Command">Exec-form command; empty = the image's own entrypoint/cmd.</param>
/// <param name="TestData">Folder in the delivery (relative) mounted read-only at <see cref="TestDataMount"/>, or null.</param>
/// <param name="TestDataMount">Absolute path in the test container (default <c>/testdata</c>).</param>
/// <param name="Mocks">Services simulated by mocks, started (and healthy) before the test runs.</param>
/// <param name="Timeout">Whole test run, mocks included (default 10 minutes, at most 2 hours).</param>
/// <param name="PassExitCodes">Exit codes that count as passed (default <c>[0]</c>).</param>
public sealed record AcceptanceTestSpec(
    string Image,
    IReadOnlyList<string> Command,
    string? TestData,
    string TestDataMount,
    IReadOnlyList<MockSpec> Mocks,
    TimeSpan Timeout,
    IReadOnlyList<int> PassExitCodes)
{
    public const string DefaultTestDataMount = "/testdata";

    /// <summary>Environment for the test container (names checked; values are the supplier's, not secrets).</summary>
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
}

/// <summary>
/// A mock service for the acceptance tests: <see cref="Image"/> from <c>images:</c>, reachable from the
/// test container as host <see cref="Name"/> on <see cref="Port"/>, healthy when <see cref="Healthcheck"/> exits 0.
/// </summary>
/// <param name="Command">Exec-form command; empty = the image's own entrypoint/cmd.</param>
/// <param name="Healthcheck">Exec-form health check run inside the mock; empty = the image's own health check.</param>
public sealed record MockSpec(string Name, string Image, IReadOnlyList<string> Command, IReadOnlyList<string> Healthcheck, int Port);
