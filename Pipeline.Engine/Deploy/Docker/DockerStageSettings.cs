using System.Globalization;
using System.Text.RegularExpressions;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// The operator's settings for one <c>docker</c> stage environment: which Docker engine (a second
/// engine on its own socket is a second security zone), which network, and the limits every
/// container of a run gets. Operator configuration, never from a delivery.
/// </summary>
public sealed partial record DockerStageSettings
{
    /// <summary>Network value meaning "no network at all" (every container alone, loopback only).</summary>
    public const string NoNetwork = "none";

    /// <summary>The Docker engine: <c>unix:///path/docker.sock</c> or <c>tcp://host:port</c>.</summary>
    public required string Endpoint { get; init; }

    /// <summary>
    /// The stage's registry (<c>host:port</c>); every image of a run must come from it, by digest.
    /// </summary>
    public required string Registry { get; init; }

    /// <summary>
    /// <c>none</c>: every container has only loopback. Any other name: an internal (no outside
    /// route) bridge network created for the run (name + run id), where containers reach each
    /// other by their names (<c>app</c>, the mocks' names); removed afterwards.
    /// </summary>
    public string Network { get; init; } = NoNetwork;

    /// <summary>Memory limit per container in bytes (swap is not granted on top).</summary>
    public long MemoryBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>CPU limit per container, in CPUs (0.5 = half a core).</summary>
    public double Cpus { get; init; } = 1.0;

    /// <summary>Process limit per container.</summary>
    public long PidsLimit { get; init; } = 128;

    /// <summary>
    /// Numeric <c>uid[:gid]</c> every container runs as; never 0. Null: the image's own declared
    /// user, which must then be numeric and non-root (otherwise <c>DEPLOY-DOCKER-ROOT-REFUSED</c>).
    /// </summary>
    public string? User { get; init; }

    /// <summary>How long the app and the mocks may take to become healthy.</summary>
    public TimeSpan HealthTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long the acceptance test may run (a request may ask for less, never more).</summary>
    public TimeSpan TestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Log evidence per container: the last this many bytes are kept and hashed (Docker itself keeps two files of eight times this size).</summary>
    public int LogByteCap { get; init; } = 1024 * 1024;

    /// <summary>How often container state is polled while waiting (health, test exit).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Interval of the healthcheck inside the container.</summary>
    public TimeSpan HealthInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Size of the writable tmpfs on <c>/tmp</c> (noexec, nosuid) in bytes.</summary>
    public long TmpfsBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>How long pulling one image may take (a hung registry must not hang the stage).</summary>
    public TimeSpan PullTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a single call to the engine may take before it counts as unreachable.</summary>
    public TimeSpan EngineTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Every problem with these settings (empty when valid); each says what to change.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (!TryParseEndpoint(Endpoint, out _))
            problems.Add($"endpoint '{Printable(Endpoint)}' must be unix:///absolute/path or tcp://host:port");
        if (string.IsNullOrWhiteSpace(Registry) || Registry.Contains('/') || Registry.Contains("://", StringComparison.Ordinal))
            problems.Add($"registry '{Printable(Registry)}' must be host:port of the stage's registry");
        if (Network != NoNetwork && !NetworkName().IsMatch(Network ?? ""))
            problems.Add($"network '{Printable(Network)}' must be 'none' or a name of [a-z0-9][a-z0-9_.-]{{0,40}}");
        if (MemoryBytes < 6L * 1024 * 1024) problems.Add("memory must be at least 6 MiB (Docker's minimum)");
        if (Cpus is <= 0 or > 64 || double.IsNaN(Cpus)) problems.Add("cpus must be more than 0 and at most 64");
        if (PidsLimit is < 1 or > 100_000) problems.Add("pidsLimit must be between 1 and 100000");
        if (User is not null && !IsNonRootUser(User, out var why)) problems.Add($"user '{Printable(User)}' {why}");
        if (HealthTimeout <= TimeSpan.Zero) problems.Add("healthTimeout must be positive");
        if (TestTimeout <= TimeSpan.Zero) problems.Add("testTimeout must be positive");
        if (LogByteCap is < 1024 or > 64 * 1024 * 1024) problems.Add("logByteCap must be between 1 KiB and 64 MiB");
        if (PollInterval < TimeSpan.FromMilliseconds(10) || PollInterval > TimeSpan.FromSeconds(10)) problems.Add("pollInterval must be between 10 ms and 10 s");
        if (HealthInterval < TimeSpan.FromMilliseconds(100)) problems.Add("healthInterval must be at least 100 ms");
        if (TmpfsBytes is < 1024 * 1024 or > 4L * 1024 * 1024 * 1024) problems.Add("tmpfs must be between 1 MiB and 4 GiB");
        if (EngineTimeout <= TimeSpan.Zero) problems.Add("engineTimeout must be positive");
        if (PullTimeout <= TimeSpan.Zero) problems.Add("pullTimeout must be positive");
        return problems;
    }

    /// <summary>Parses the endpoint into the URI Docker.DotNet takes.</summary>
    public static bool TryParseEndpoint(string? endpoint, out Uri uri)
    {
        uri = null!;
        if (string.IsNullOrWhiteSpace(endpoint) || !Uri.TryCreate(endpoint, UriKind.Absolute, out var parsed)) return false;
        if (parsed.Scheme == "unix" && parsed.AbsolutePath.Length > 1 && string.IsNullOrEmpty(parsed.Host) && string.IsNullOrEmpty(parsed.Query))
        {
            uri = parsed;
            return true;
        }
        if (parsed.Scheme == "tcp" && !string.IsNullOrEmpty(parsed.Host) && !parsed.IsDefaultPort && parsed.AbsolutePath == "/" && string.IsNullOrEmpty(parsed.UserInfo))
        {
            uri = parsed;
            return true;
        }
        return false;
    }

    /// <summary>
    /// True for a numeric <c>uid</c> or <c>uid:gid</c> with uid and gid not 0. Names are refused:
    /// the image's own /etc/passwd (supplier-controlled) could map any name to 0.
    /// </summary>
    public static bool IsNonRootUser(string? user, out string reason)
    {
        reason = "";
        if (string.IsNullOrWhiteSpace(user))
        {
            reason = "is empty, which means root";
            return false;
        }
        var parts = user.Split(':');
        if (parts.Length > 2 || parts.Any(p => !uint.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
        {
            reason = "must be a numeric uid or uid:gid (user names resolve inside the image and could be root)";
            return false;
        }
        if (parts.Any(p => uint.Parse(p, CultureInfo.InvariantCulture) == 0))
        {
            reason = "is root (uid or gid 0); containers must run as a non-root user";
            return false;
        }
        return true;
    }

    internal static string Printable(string? value) =>
        value is null ? "(null)" : new string(value.Take(200).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,40}$", RegexOptions.CultureInvariant)]
    private static partial Regex NetworkName();
}
