using System.Security.Cryptography;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// Runs a delivery's acceptance test in a docker stage through Docker.DotNet: pulls every image by
/// digest from the stage's registry, refuses root, creates the stage network when configured,
/// starts the mocks and then the app hardened (<see cref="DockerHardening"/>), waits for their
/// healthchecks with a deadline (polling container state), runs the test with a timeout, collects
/// exit codes and bounded logs, and always removes every container and network of the run (found
/// by its <c>pipeline.run</c> label), also on failure, timeout and cancellation.
/// </summary>
public sealed partial class DockerStageRunner : IDisposable
{
    private readonly DockerClient _client;
    private readonly TimeProvider _time;
    private readonly Serilog.ILogger _log;

    /// <summary>Throws <c>DEPLOY-DOCKER-SETTINGS</c> listing every problem of <paramref name="settings"/>.</summary>
    public DockerStageRunner(DockerStageSettings settings, TimeProvider time, Serilog.ILogger log)
    {
        var problems = settings.Validate();
        if (problems.Count > 0)
            throw new PipelineException("DEPLOY-DOCKER-SETTINGS", "Docker stage settings are invalid: " + string.Join("; ", problems) + ".");
        DockerStageSettings.TryParseEndpoint(settings.Endpoint, out var uri);
        Settings = settings;
        _time = time;
        _log = log.ForContext<DockerStageRunner>();
        _client = new DockerClientConfiguration(uri, null, settings.EngineTimeout).CreateClient();
    }

    /// <summary>The validated settings.</summary>
    public DockerStageSettings Settings { get; }

    /// <summary>
    /// Pulls, starts mocks and app hardened, waits for health, runs the test, collects evidence and
    /// always removes what it started. Returns a result for every outcome (the request is checked
    /// first: <c>DEPLOY-DOCKER-REQUEST</c> lists every problem); throws only
    /// <see cref="OperationCanceledException"/>, after cleaning up.
    /// </summary>
    public async Task<DockerRunResult> RunAsync(DockerRunRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var run = new RunState(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), request, _time.GetUtcNow());
        var problems = DockerRequestValidator.Validate(request, Settings);
        if (problems.Count > 0)
            return Finish(run, DockerCodes.Request, "The docker stage request is not acceptable: " + string.Join("; ", problems) + ".", false, [], true);

        _log.Information("Docker stage {Stage} run {RunId} for delivery {DeliveryId} on {Endpoint}", request.Stage, run.RunId, request.DeliveryId, Settings.Endpoint);
        string code, message;
        var transient = false;
        try
        {
            (code, message) = await ExecuteAsync(run, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var cleaned = await CleanupAsync(run.RunId).ConfigureAwait(false);
            _log.Warning("Docker stage run {RunId} cancelled; cleaned up: {CleanedUp}", run.RunId, cleaned);
            throw;
        }
        catch (DockerStepException e)
        {
            (code, message, transient) = (e.Code, e.Message, e.Transient);
        }
        catch (Exception e) when (DockerFailures.IsUnreachable(e, cancellationToken))
        {
            (code, message, transient) = (DockerCodes.Unreachable,
                $"The stage's Docker engine at {Settings.Endpoint} cannot be reached ({DockerFailures.Describe(e)}); this is an outage on the operator's side, retry when it is back.", true);
        }
        catch (DockerApiException e)
        {
            (code, message, transient) = (DockerCodes.Engine, $"The Docker engine refused a request ({(int)e.StatusCode}): {DockerFailures.Describe(e)}.", true);
        }
        catch (Exception)
        {
            // A bug of ours: still remove what the run started, then let it surface.
            await CleanupAsync(run.RunId).ConfigureAwait(false);
            throw;
        }

        var containers = await EvidenceAsync(run).ConfigureAwait(false);
        var cleanedUp = await CleanupAsync(run.RunId).ConfigureAwait(false);
        return Finish(run, code, message, transient, containers, cleanedUp);
    }

    private async Task<(string Code, string Message)> ExecuteAsync(RunState run, CancellationToken ct)
    {
        await _client.System.PingAsync(ct).ConfigureAwait(false);
        var users = await PullAsync(run.Request, ct).ConfigureAwait(false);

        string? network = null;
        if (Settings.Network != DockerStageSettings.NoNetwork)
        {
            network = $"{Settings.Network}-{run.RunId}";
            await _client.Networks.CreateNetworkAsync(new NetworksCreateParameters
            {
                Name = network,
                Driver = "bridge",
                Internal = true,
                Attachable = false,
                CheckDuplicate = true,
                Labels = DockerHardening.Labels(run.Request, run.RunId),
            }, ct).ConfigureAwait(false);
        }

        var mocks = new List<Tracked>();
        foreach (var mock in run.Request.Mocks)
            mocks.Add(await StartAsync(run, mock, DockerContainerRole.Mock, users[mock.Image], network, ct).ConfigureAwait(false));
        await WaitReadyAsync(mocks, ct).ConfigureAwait(false);
        var app = await StartAsync(run, run.Request.App, DockerContainerRole.App, users[run.Request.App.Image], network, ct).ConfigureAwait(false);
        await WaitReadyAsync([app], ct).ConfigureAwait(false);

        var timeout = run.Request.TestTimeout is { } t && t < Settings.TestTimeout ? t : Settings.TestTimeout;
        var test = await StartAsync(run, run.Request.Test, DockerContainerRole.Test, users[run.Request.Test.Image], network, ct).ConfigureAwait(false);
        var exit = await WaitExitAsync(test, timeout, ct).ConfigureAwait(false);
        if (exit is null)
        {
            try
            {
                await _client.Containers.KillContainerAsync(test.Id, new ContainerKillParameters { Signal = "KILL" }, ct).ConfigureAwait(false);
            }
            catch (DockerApiException e) when (e.StatusCode is System.Net.HttpStatusCode.Conflict or System.Net.HttpStatusCode.NotFound)
            {
                // It exited just at the deadline: still a timeout (it did not finish within it).
            }
            return (DockerCodes.TestTimeout, $"The acceptance test '{test.Spec.Name}' did not finish within {timeout.TotalSeconds:0.###} s and was killed; make it finish in time or ask for a longer timeout.");
        }
        if (run.Request.PassExitCodes.Contains(exit.Value))
            return (DockerCodes.Passed, $"The app and {mocks.Count} mock(s) became healthy and the acceptance test '{test.Spec.Name}' passed (exit code {exit.Value}).");
        return (DockerCodes.TestFailed, $"The acceptance test '{test.Spec.Name}' failed: exit code {exit.Value}{(test.OomKilled ? " (killed: out of memory)" : "")}, pass is {string.Join(" or ", run.Request.PassExitCodes)}; see its log excerpt.");
    }

    /// <summary>Pulls each image by digest and returns the user each image's containers run as.</summary>
    private async Task<Dictionary<string, string>> PullAsync(DockerRunRequest request, CancellationToken ct)
    {
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        var refused = new List<string>();
        foreach (var image in DockerRequestValidator.All(request).Select(s => s.Spec.Image).Distinct(StringComparer.Ordinal))
        {
            DockerRequestValidator.TryParseImage(image, Settings.Registry, out var parsed, out _);
            var progress = new PullProgress();
            ImageInspectResponse inspected;
            using var deadline = new CancellationTokenSource(Settings.PullTimeout, _time);
            using var pullCts = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
            try
            {
                await _client.Images.CreateImageAsync(
                    new ImagesCreateParameters { FromImage = $"{Settings.Registry}/{parsed.Repository}", Tag = parsed.Digest.ToString() },
                    null, progress, pullCts.Token).ConfigureAwait(false);
                if (progress.Error is { } error)
                    throw new DockerStepException(DockerCodes.Pull, $"Pulling {image} failed: {error}.", DockerFailures.LooksLikeOutage(error));
                inspected = await _client.Images.InspectImageAsync(image, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw new DockerStepException(DockerCodes.Pull,
                    $"Pulling {image} did not finish within {Settings.PullTimeout.TotalSeconds:0.###} s; the stage's registry or engine is slow or hung (retry later).", true);
            }
            catch (DockerApiException e)
            {
                var why = DockerFailures.Describe(e);
                throw new DockerStepException(DockerCodes.Pull, $"Pulling {image} from the stage's registry failed: {why}.", DockerFailures.LooksLikeOutage(why));
            }
            var user = Settings.User ?? inspected.Config?.User ?? "";
            if (!DockerStageSettings.IsNonRootUser(user, out var reason))
                refused.Add($"{image}: the image's user '{DockerStageSettings.Printable(user)}' {reason}");
            users[image] = user;
        }
        if (refused.Count > 0)
            throw new DockerStepException(DockerCodes.RootRefused,
                "Containers must not run as root: " + string.Join("; ", refused) + ". Declare a numeric non-root user in the image or set the stage's user.");
        return users;
    }

    private async Task<Tracked> StartAsync(RunState run, DockerContainerSpec spec, DockerContainerRole role, string user, string? network, CancellationToken ct)
    {
        var tracked = new Tracked(spec, role);
        run.Containers.Add(tracked);
        try
        {
            var created = await _client.Containers.CreateContainerAsync(
                DockerHardening.Create(Settings, run.Request, run.RunId, spec, role, user, network), ct).ConfigureAwait(false);
            tracked.Id = created.ID;
            tracked.StartedAt = _time.GetUtcNow();
            await _client.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), ct).ConfigureAwait(false);
        }
        catch (DockerApiException e) when ((int)e.StatusCode is >= 400 and < 500 || e.ResponseBody?.Contains("OCI runtime", StringComparison.Ordinal) == true)
        {
            throw new DockerStepException(DockerCodes.Start,
                $"The {role.ToString().ToLowerInvariant()} '{spec.Name}' could not be started: {DockerFailures.Describe(e)}. Check its command and image.");
        }
        return tracked;
    }

    /// <summary>Polls until every container is healthy (or running without a healthcheck), one exits, one turns unhealthy, or the deadline passes.</summary>
    private async Task WaitReadyAsync(IReadOnlyList<Tracked> containers, CancellationToken ct)
    {
        var deadline = _time.GetUtcNow() + Settings.HealthTimeout;
        var pending = containers.ToList();
        while (pending.Count > 0)
        {
            foreach (var c in pending.ToList())
            {
                var state = (await _client.Containers.InspectContainerAsync(c.Id, ct).ConfigureAwait(false)).State;
                c.Health = state.Health?.Status ?? "none";
                if (!state.Running)
                {
                    (c.ExitCode, c.OomKilled, c.FinishedAt) = (state.ExitCode, state.OOMKilled, _time.GetUtcNow());
                    throw new DockerStepException(DockerCodes.Unhealthy,
                        $"The {c.RoleName} '{c.Spec.Name}' exited with code {state.ExitCode}{(state.OOMKilled ? " (killed: out of memory)" : "")} before it became healthy; see its log excerpt.");
                }
                if (state.Health is null || c.Health == "healthy")
                {
                    c.ReadyAt = _time.GetUtcNow();
                    pending.Remove(c);
                }
                else if (c.Health == "unhealthy")
                {
                    throw new DockerStepException(DockerCodes.Unhealthy,
                        $"The {c.RoleName} '{c.Spec.Name}' reported unhealthy: its healthcheck said '{LastProbe(state)}'.");
                }
            }
            if (pending.Count == 0) return;
            if (_time.GetUtcNow() >= deadline)
                throw new DockerStepException(DockerCodes.Unhealthy,
                    $"{string.Join(", ", pending.Select(c => $"The {c.RoleName} '{c.Spec.Name}' (status {c.Health})"))} did not become healthy within {Settings.HealthTimeout.TotalSeconds:0.###} s.");
            await Task.Delay(Settings.PollInterval, _time, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Polls until the container exits (its exit code) or the timeout passes (null).</summary>
    private async Task<long?> WaitExitAsync(Tracked c, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = _time.GetUtcNow() + timeout;
        while (true)
        {
            var state = (await _client.Containers.InspectContainerAsync(c.Id, ct).ConfigureAwait(false)).State;
            if (!state.Running && state.Status is "exited" or "dead")
            {
                (c.ExitCode, c.OomKilled, c.FinishedAt) = (state.ExitCode, state.OOMKilled, _time.GetUtcNow());
                return state.ExitCode;
            }
            if (_time.GetUtcNow() >= deadline) return null;
            await Task.Delay(Settings.PollInterval, _time, ct).ConfigureAwait(false);
        }
    }

    private static string LastProbe(ContainerState state)
    {
        var output = state.Health?.Log?.LastOrDefault()?.Output ?? "";
        var text = DockerLogs.Printable(System.Text.Encoding.UTF8.GetBytes(output.Length > 300 ? output[..300] : output)).Trim();
        return text.Length == 0 ? $"exit code {state.Health?.Log?.LastOrDefault()?.ExitCode}" : text;
    }

    private DockerRunResult Finish(RunState run, string code, string message, bool transient, IReadOnlyList<DockerContainerResult> containers, bool cleanedUp)
    {
        var result = new DockerRunResult(code == DockerCodes.Passed, code, message, transient, run.RunId, containers, run.StartedAt, _time.GetUtcNow(), cleanedUp);
        _log.Information("Docker stage {Stage} run {RunId} for delivery {DeliveryId}: {Code} (cleaned up: {CleanedUp})",
            run.Request.Stage, run.RunId, run.Request.DeliveryId, code, cleanedUp);
        return result;
    }

    /// <inheritdoc />
    public void Dispose() => _client.Dispose();

    /// <summary>Docker's pull progress: remembers the first error the stream reports.</summary>
    private sealed class PullProgress : IProgress<JSONMessage>
    {
        public string? Error { get; private set; }

        public void Report(JSONMessage value)
        {
            var text = value.ErrorMessage ?? value.Error?.Message;
            if (!string.IsNullOrEmpty(text)) Error ??= DockerStageSettings.Printable(text);
        }
    }

    private sealed record RunState(string RunId, DockerRunRequest Request, DateTimeOffset StartedAt)
    {
        public List<Tracked> Containers { get; } = [];
    }

    private sealed class Tracked(DockerContainerSpec spec, DockerContainerRole role)
    {
        public DockerContainerSpec Spec { get; } = spec;
        public DockerContainerRole Role { get; } = role;
        public string RoleName => Role.ToString().ToLowerInvariant();
        public string Id { get; set; } = "";
        public string Health { get; set; } = "not-started";
        public long? ExitCode { get; set; }
        public bool OomKilled { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        public DateTimeOffset? ReadyAt { get; set; }
        public DateTimeOffset? FinishedAt { get; set; }
    }
}
