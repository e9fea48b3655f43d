using System.Globalization;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// Reads a docker stage's settings from the operator's YAML (a mapping such as a stage's
/// <c>docker:</c> block); every problem goes into the reader's <see cref="ConfigErrors"/> with file
/// and line, none is thrown.
/// </summary>
public static class DockerStageSettingsReader
{
    /// <summary>The settings, or null when <paramref name="m"/> had errors (they are in <c>m.Errors</c>).</summary>
    public static DockerStageSettings? Read(MappingReader m)
    {
        var before = m.Errors.All.Count;
        var defaults = new DockerStageSettings { Endpoint = "", Registry = "" };
        var endpoint = m.String("endpoint", required: true, hint: "unix:///run/docker-stage/docker.sock or tcp://host:port");
        var registry = m.String("registry", required: true, hint: "host:port of the stage's registry");
        var network = m.String("network") ?? defaults.Network;
        var memory = m.Size("memory") ?? defaults.MemoryBytes;
        var cpusText = m.String("cpus");
        var cpus = defaults.Cpus;
        if (cpusText is not null && !double.TryParse(cpusText, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out cpus))
            m.KeyError("cpus", $"'cpus' must be a number such as 0.5 or 2, not '{DockerStageSettings.Printable(cpusText)}'");
        var pids = m.Int("pidsLimit", 1, 100_000) ?? defaults.PidsLimit;
        var user = m.String("user");
        var health = m.Int("healthTimeoutSeconds", 1, 3600);
        var test = m.Int("testTimeoutSeconds", 1, 86_400);
        var logCap = m.Size("logByteCap");
        var tmpfs = m.Size("tmpfs") ?? defaults.TmpfsBytes;
        var engine = m.Int("engineTimeoutSeconds", 1, 600);
        var pull = m.Int("pullTimeoutSeconds", 1, 3600);
        m.Done();
        if (m.Errors.All.Count > before || endpoint is null || registry is null) return null;

        var settings = defaults with
        {
            Endpoint = endpoint,
            Registry = registry,
            Network = network,
            MemoryBytes = memory,
            Cpus = cpus,
            PidsLimit = pids,
            User = user,
            HealthTimeout = health is { } h ? TimeSpan.FromSeconds(h) : defaults.HealthTimeout,
            TestTimeout = test is { } t ? TimeSpan.FromSeconds(t) : defaults.TestTimeout,
            LogByteCap = logCap is { } c ? (int)Math.Min(c, int.MaxValue) : defaults.LogByteCap,
            TmpfsBytes = tmpfs,
            EngineTimeout = engine is { } e ? TimeSpan.FromSeconds(e) : defaults.EngineTimeout,
            PullTimeout = pull is { } pt ? TimeSpan.FromSeconds(pt) : defaults.PullTimeout,
        };
        var problems = settings.Validate();
        foreach (var p in problems) m.Error("docker stage: " + p);
        return problems.Count == 0 ? settings : null;
    }
}
