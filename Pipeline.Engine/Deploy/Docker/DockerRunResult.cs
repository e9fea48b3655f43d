namespace Pipeline.Engine.Deploy.Docker;

/// <summary>Stable result codes of a docker stage run.</summary>
public static class DockerCodes
{
    /// <summary>Every container became healthy and the test exited with a pass code.</summary>
    public const string Passed = "DEPLOY-DOCKER-PASSED";
    /// <summary>The request (from the delivery) is not acceptable: not pinned by digest, foreign registry, bad names, missing test data.</summary>
    public const string Request = "DEPLOY-DOCKER-REQUEST";
    /// <summary>The stage's Docker engine did not answer: our outage, retry later; not the supplier's fault.</summary>
    public const string Unreachable = "DEPLOY-DOCKER-UNREACHABLE";
    /// <summary>The engine answered with an unexpected error (ours, transient).</summary>
    public const string Engine = "DEPLOY-DOCKER-ENGINE";
    /// <summary>An image could not be pulled by its digest from the stage's registry.</summary>
    public const string Pull = "DEPLOY-DOCKER-PULL";
    /// <summary>A container would run as root (settings or the image's declared user).</summary>
    public const string RootRefused = "DEPLOY-DOCKER-ROOT-REFUSED";
    /// <summary>A container could not be created or started (e.g. its command does not exist).</summary>
    public const string Start = "DEPLOY-DOCKER-START";
    /// <summary>The app or a mock did not become healthy in time, exited, or reported unhealthy.</summary>
    public const string Unhealthy = "DEPLOY-DOCKER-UNHEALTHY";
    /// <summary>The acceptance test did not finish within its timeout (it was killed).</summary>
    public const string TestTimeout = "DEPLOY-DOCKER-TEST-TIMEOUT";
    /// <summary>The acceptance test exited with a code that is not a pass code.</summary>
    public const string TestFailed = "DEPLOY-DOCKER-TEST-FAILED";
}

/// <summary>The role of a container in a run.</summary>
public enum DockerContainerRole
{
    Mock,
    App,
    Test,
}

/// <summary>
/// Evidence for one container: its image (by digest), exit code, last health status
/// (<c>healthy</c>, <c>unhealthy</c>, <c>starting</c>, <c>none</c> without a healthcheck,
/// <c>not-started</c>), the SHA-256 of its log evidence (the last log-byte-cap bytes of stdout and
/// stderr as Docker multiplexes them; <see cref="LogTruncated"/> when there was more), the last
/// 2 KiB of it as printable text, and timings as the runner observed them.
/// </summary>
/// <param name="LogTruncated">More output existed than the evidence holds (Docker's json-file rotation, two files of eight times the cap, may also have dropped older output).</param>
public sealed record DockerContainerResult(
    string Name,
    DockerContainerRole Role,
    string Image,
    string? ContainerId,
    long? ExitCode,
    string Health,
    bool OomKilled,
    string LogDigest,
    long LogBytes,
    bool LogTruncated,
    string LogExcerpt,
    DateTimeOffset? StartedAt,
    DateTimeOffset? ReadyAt,
    DateTimeOffset? FinishedAt);

/// <summary>
/// The outcome of a run: pass or fail with a stable <see cref="Code"/> (see <see cref="DockerCodes"/>)
/// and a message a person can act on; <see cref="IsTransient"/> is true when the cause is on the
/// operator's side (engine unreachable, registry outage) and the run should be retried rather than
/// count against the delivery. <see cref="CleanedUp"/> says every container and network of the
/// run was removed (checked by listing by the run's label).
/// </summary>
public sealed record DockerRunResult(
    bool Passed,
    string Code,
    string Message,
    bool IsTransient,
    string RunId,
    IReadOnlyList<DockerContainerResult> Containers,
    DateTimeOffset StartedAt,
    DateTimeOffset FinishedAt,
    bool CleanedUp)
{
    /// <summary>The container result of <paramref name="role"/> (the first one for mocks), or null when it never got that far.</summary>
    public DockerContainerResult? Of(DockerContainerRole role) => Containers.FirstOrDefault(c => c.Role == role);
}

/// <summary>What <see cref="DockerStageRunner.SweepAsync"/> removed.</summary>
public sealed record DockerSweepResult(IReadOnlyList<string> RemovedContainers, IReadOnlyList<string> RemovedNetworks);
