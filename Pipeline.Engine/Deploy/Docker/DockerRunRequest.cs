namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// One container of a run: a name (how the others reach it on a stage network), an image pinned
/// by digest in the stage's registry (<c>registry/repo@sha256:…</c>), and optionally the full
/// command (replaces the image's entrypoint and cmd), an exec-form healthcheck (replaces the
/// image's; without either the container counts healthy once it runs) and environment values.
/// Everything here derives from the delivery: hostile, validated by the runner.
/// </summary>
public sealed record DockerContainerSpec(
    string Name,
    string Image,
    IReadOnlyList<string>? Command = null,
    IReadOnlyList<string>? Healthcheck = null,
    IReadOnlyDictionary<string, string>? Environment = null);

/// <summary>
/// What to run in a docker stage for one delivery: the mocks (started first, must become
/// healthy), the app (must become healthy), then the acceptance test (must exit with one of
/// <see cref="PassExitCodes"/> within the timeout). The test data folder, when given, is mounted
/// read-only at <see cref="TestDataMountPath"/> into every container of the run.
/// </summary>
public sealed record DockerRunRequest
{
    /// <summary>Where the test data appears inside the containers.</summary>
    public const string TestDataMountPath = "/testdata";

    /// <summary>The delivery (label <c>pipeline.delivery</c>).</summary>
    public required string DeliveryId { get; init; }

    /// <summary>The stage (label <c>pipeline.stage</c>).</summary>
    public required string Stage { get; init; }

    /// <summary>The application under test.</summary>
    public required DockerContainerSpec App { get; init; }

    /// <summary>Services the delivery simulates for the test.</summary>
    public IReadOnlyList<DockerContainerSpec> Mocks { get; init; } = [];

    /// <summary>The acceptance test (a command in the app image or a test image of the delivery).</summary>
    public required DockerContainerSpec Test { get; init; }

    /// <summary>Host folder with the delivery's test data (absolute; mounted read-only), or null.</summary>
    public string? TestDataPath { get; init; }

    /// <summary>Exit codes of the test that count as pass.</summary>
    public IReadOnlyList<long> PassExitCodes { get; init; } = [0];

    /// <summary>The delivery's own test timeout; the stage's <see cref="DockerStageSettings.TestTimeout"/> caps it.</summary>
    public TimeSpan? TestTimeout { get; init; }
}
