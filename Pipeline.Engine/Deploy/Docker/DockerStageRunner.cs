namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// Runs a delivery's acceptance test in a docker stage through Docker.DotNet (skeleton: the
/// signature is stable, the implementation follows).
/// </summary>
public sealed class DockerStageRunner : IDisposable
{
    /// <summary>Throws <c>DEPLOY-DOCKER-SETTINGS</c> listing every problem of <paramref name="settings"/>.</summary>
    public DockerStageRunner(DockerStageSettings settings, TimeProvider time, Serilog.ILogger log)
    {
        var problems = settings.Validate();
        if (problems.Count > 0)
            throw new PipelineException("DEPLOY-DOCKER-SETTINGS", "Docker stage settings are invalid: " + string.Join("; ", problems) + ".");
        Settings = settings;
        _ = time;
        _ = log;
    }

    /// <summary>The validated settings.</summary>
    public DockerStageSettings Settings { get; }

    /// <summary>
    /// Pulls, starts mocks and app hardened, waits for health, runs the test, collects evidence and
    /// always removes what it started. Returns a result for every outcome; throws only
    /// <see cref="OperationCanceledException"/> (after cleaning up).
    /// </summary>
    public Task<DockerRunResult> RunAsync(DockerRunRequest request, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <summary>Removes containers and networks left by a crashed run, selected by labels (null = any value).</summary>
    public Task<DockerSweepResult> SweepAsync(string? deliveryId, string? stage, CancellationToken cancellationToken) =>
        throw new NotImplementedException();

    /// <inheritdoc />
    public void Dispose()
    {
    }
}
