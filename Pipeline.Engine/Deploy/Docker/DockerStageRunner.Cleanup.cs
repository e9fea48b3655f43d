using Docker.DotNet;
using Docker.DotNet.Models;

namespace Pipeline.Engine.Deploy.Docker;

public sealed partial class DockerStageRunner
{
    /// <summary>
    /// Removes containers and networks left by a crashed run, selected by labels: every object
    /// carrying <c>pipeline.run</c> and, when given, <c>pipeline.delivery</c> = <paramref name="deliveryId"/>
    /// and <c>pipeline.stage</c> = <paramref name="stage"/>. Safe to call at any time for runs that are
    /// not in progress (e.g. at start-up, before resuming a stage).
    /// </summary>
    public async Task<DockerSweepResult> SweepAsync(string? deliveryId, string? stage, CancellationToken cancellationToken)
    {
        var labels = new Dictionary<string, bool> { [DockerHardening.RunLabel] = true };
        if (deliveryId is not null) labels[$"{DockerHardening.DeliveryLabel}={deliveryId}"] = true;
        if (stage is not null) labels[$"{DockerHardening.StageLabel}={stage}"] = true;
        try
        {
            var (containers, networks) = await RemoveAsync(labels, cancellationToken).ConfigureAwait(false);
            _log.Information("Docker sweep on {Endpoint} for delivery {DeliveryId} stage {Stage}: removed {Containers} container(s), {Networks} network(s)",
                Settings.Endpoint, deliveryId, stage, containers.Count, networks.Count);
            return new DockerSweepResult(containers, networks);
        }
        catch (Exception e) when (DockerFailures.IsUnreachable(e, cancellationToken))
        {
            throw new PipelineException(DockerCodes.Unreachable,
                $"The stage's Docker engine at {Settings.Endpoint} cannot be reached ({DockerFailures.Describe(e)}); sweep again when it is back.", e);
        }
    }

    /// <summary>Removes everything of run <paramref name="runId"/>, then checks nothing is left; never throws.</summary>
    private async Task<bool> CleanupAsync(string runId)
    {
        // Not the caller's token: cleaning up must happen also (especially) when the run was cancelled.
        using var cts = new CancellationTokenSource(Settings.EngineTimeout * 2, _time);
        var labels = new Dictionary<string, bool> { [$"{DockerHardening.RunLabel}={runId}"] = true };
        try
        {
            await RemoveAsync(labels, cts.Token).ConfigureAwait(false);
            var left = await _client.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = Filter(labels) }, cts.Token).ConfigureAwait(false);
            var nets = await _client.Networks.ListNetworksAsync(new NetworksListParameters { Filters = Filter(labels) }, cts.Token).ConfigureAwait(false);
            if (left.Count == 0 && nets.Count == 0) return true;
            _log.Warning("Docker stage run {RunId}: {Containers} container(s) and {Networks} network(s) still present after cleanup", runId, left.Count, nets.Count);
            return false;
        }
        catch (Exception e)
        {
            _log.Warning("Docker stage run {RunId}: cleanup failed ({Reason}); SweepAsync removes the leftovers", runId, DockerFailures.Describe(e));
            return false;
        }
    }

    private async Task<(List<string> Containers, List<string> Networks)> RemoveAsync(Dictionary<string, bool> labels, CancellationToken ct)
    {
        var containers = new List<string>();
        foreach (var c in await _client.Containers.ListContainersAsync(new ContainersListParameters { All = true, Filters = Filter(labels) }, ct).ConfigureAwait(false))
        {
            try
            {
                await _client.Containers.RemoveContainerAsync(c.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, ct).ConfigureAwait(false);
            }
            catch (DockerContainerNotFoundException)
            {
                // Gone already.
            }
            containers.Add(c.Names?.FirstOrDefault()?.TrimStart('/') ?? c.ID);
        }
        var networks = new List<string>();
        foreach (var n in await _client.Networks.ListNetworksAsync(new NetworksListParameters { Filters = Filter(labels) }, ct).ConfigureAwait(false))
        {
            try
            {
                await _client.Networks.DeleteNetworkAsync(n.ID, ct).ConfigureAwait(false);
            }
            catch (DockerNetworkNotFoundException)
            {
                // Gone already.
            }
            networks.Add(n.Name);
        }
        return (containers, networks);
    }

    private static Dictionary<string, IDictionary<string, bool>> Filter(Dictionary<string, bool> labels) => new() { ["label"] = labels };

    /// <summary>Final state and bounded logs of every container the run created; best effort (never throws).</summary>
    private async Task<IReadOnlyList<DockerContainerResult>> EvidenceAsync(RunState run)
    {
        var results = new List<DockerContainerResult>();
        foreach (var c in run.Containers)
        {
            var log = CollectedLog.None;
            if (c.Id.Length > 0)
            {
                using var cts = new CancellationTokenSource(Settings.EngineTimeout, _time);
                try
                {
                    var state = (await _client.Containers.InspectContainerAsync(c.Id, cts.Token).ConfigureAwait(false)).State;
                    if (!state.Running && state.Status is "exited" or "dead")
                    {
                        c.ExitCode ??= state.ExitCode;
                        c.OomKilled |= state.OOMKilled;
                        c.FinishedAt ??= _time.GetUtcNow();
                    }
                    if (state.Health is { } health) c.Health = health.Status;
                    else if (c.Health == "not-started" && state.Status != "created") c.Health = "none";
                    log = await DockerLogs.CollectAsync(_client, c.Id, Settings.LogByteCap, cts.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    log = CollectedLog.None with { Excerpt = "(log unavailable: " + DockerFailures.Describe(e) + ")" };
                }
            }
            results.Add(new DockerContainerResult(c.Spec.Name, c.Role, c.Spec.Image, c.Id.Length > 0 ? c.Id : null, c.ExitCode, c.Health, c.OomKilled,
                log.Digest, log.Bytes, log.Truncated, log.Excerpt, c.StartedAt, c.ReadyAt, c.FinishedAt));
        }
        return results;
    }
}
