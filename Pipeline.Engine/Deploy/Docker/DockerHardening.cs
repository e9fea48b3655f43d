using System.Globalization;
using Docker.DotNet.Models;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// The one place that says how a container of a docker stage is created: read-only root, no new
/// privileges, every capability dropped, not privileged, a numeric non-root user, memory (no extra
/// swap), CPU and process limits, a small noexec tmpfs on /tmp, capped log files, no host mounts
/// except the read-only test data, and the run's labels.
/// </summary>
internal static class DockerHardening
{
    public const string DeliveryLabel = "pipeline.delivery";
    public const string StageLabel = "pipeline.stage";
    public const string RunLabel = "pipeline.run";
    public const string RoleLabel = "pipeline.role";

    /// <summary>
    /// Docker's json-file keeps two files of this many times the log cap: the JSON wrapping of short
    /// lines is several times their size, and the evidence (the last cap bytes) must still be there.
    /// </summary>
    public const int LogFileFactor = 8;

    public static Dictionary<string, string> Labels(DockerRunRequest request, string runId) => new(StringComparer.Ordinal)
    {
        [DeliveryLabel] = request.DeliveryId,
        [StageLabel] = request.Stage,
        [RunLabel] = runId,
    };

    public static string ContainerName(string runId, DockerContainerSpec spec) => $"pipeline-{runId}-{spec.Name}";

    public static CreateContainerParameters Create(
        DockerStageSettings settings, DockerRunRequest request, string runId, DockerContainerSpec spec,
        DockerContainerRole role, string user, string? network)
    {
        var labels = Labels(request, runId);
        labels[RoleLabel] = role.ToString().ToLowerInvariant();
        var mounts = new List<Mount>();
        if (request.TestDataPath is { } data)
            mounts.Add(new Mount { Type = "bind", Source = Path.GetFullPath(data), Target = DockerRunRequest.TestDataMountPath, ReadOnly = true });
        var p = new CreateContainerParameters
        {
            Name = ContainerName(runId, spec),
            Image = spec.Image,
            User = user,
            Labels = labels,
            Env = (spec.Environment ?? new Dictionary<string, string>()).Select(e => $"{e.Key}={e.Value}").ToList(),
            Healthcheck = Health(settings, spec, role),
            AttachStdin = false,
            OpenStdin = false,
            Tty = false,
            NetworkDisabled = network is null,
            HostConfig = new HostConfig
            {
                ReadonlyRootfs = true,
                Privileged = false,
                SecurityOpt = ["no-new-privileges:true"],
                CapDrop = ["ALL"],
                CapAdd = [],
                Memory = settings.MemoryBytes,
                MemorySwap = settings.MemoryBytes,
                NanoCPUs = (long)Math.Round(settings.Cpus * 1_000_000_000d),
                PidsLimit = settings.PidsLimit,
                Tmpfs = new Dictionary<string, string>
                {
                    ["/tmp"] = "rw,noexec,nosuid,nodev,size=" + settings.TmpfsBytes.ToString(CultureInfo.InvariantCulture),
                },
                Mounts = mounts,
                Binds = [],
                NetworkMode = network ?? DockerStageSettings.NoNetwork,
                IpcMode = "private",
                RestartPolicy = new RestartPolicy { Name = RestartPolicyKind.No },
                AutoRemove = false,
                LogConfig = new LogConfig
                {
                    Type = "json-file",
                    Config = new Dictionary<string, string>
                    {
                        ["max-size"] = (LogFileFactor * (long)settings.LogByteCap).ToString(CultureInfo.InvariantCulture),
                        ["max-file"] = "2",
                    },
                },
            },
        };
        if (spec.Command is { Count: > 0 } command)
        {
            // The full argv: replaces the image's entrypoint and cmd (the engine then ignores the image's cmd).
            p.Entrypoint = [command[0]];
            p.Cmd = command.Skip(1).ToList();
        }
        if (network is not null)
        {
            p.NetworkingConfig = new NetworkingConfig
            {
                EndpointsConfig = new Dictionary<string, EndpointSettings> { [network] = new() { Aliases = [spec.Name] } },
            };
        }
        return p;
    }

    private static HealthConfig Health(DockerStageSettings settings, DockerContainerSpec spec, DockerContainerRole role)
    {
        if (role == DockerContainerRole.Test) return new HealthConfig { Test = ["NONE"] };
        // An empty test keeps the image's own healthcheck command, with the stage's timing.
        return new HealthConfig
        {
            Test = spec.Healthcheck is { Count: > 0 } h ? ["CMD", .. h] : [],
            Interval = settings.HealthInterval,
            Timeout = settings.HealthInterval * 5,
            Retries = 3,
        };
    }
}
