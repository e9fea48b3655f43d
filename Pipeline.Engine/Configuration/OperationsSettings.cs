using System.Net;

namespace Pipeline.Engine.Configuration;

/// <summary>How log lines are written: readable text, or one compact JSON object per line (journald, collectors).</summary>
public enum LogFormat { Text, Json }

/// <summary>
/// engine.yaml <c>metrics: { listen: 127.0.0.1:9464 }</c>: where the daemon serves <c>/metrics</c> (Prometheus) and
/// <c>/health/live</c>, <c>/health/ready</c>. Loopback only unless <c>allowRemote: true</c> (the readiness answer names
/// the failing dependency). Null: not served.
/// </summary>
public sealed record MetricsSettings(IPEndPoint Listen, bool AllowRemote)
{
    public string Url => $"http://{Listen}";
}

/// <summary>
/// engine.yaml <c>logging: { format: json | text }</c>; the environment variable <c>PIPELINE_LOG_FORMAT</c> and the
/// <c>--log-json</c> option win over the file (the unit sets <c>PIPELINE_LOG_FORMAT=json</c> for journald).
/// </summary>
public sealed record LoggingSettings(LogFormat Format)
{
    public const string EnvironmentVariable = "PIPELINE_LOG_FORMAT";

    public static LoggingSettings Default { get; } = new(LogFormat.Text);
}

/// <summary>Parses the operator sections <c>metrics:</c> and <c>logging:</c> of engine.yaml.</summary>
public static class OperationsSettingsParser
{
    public static (MetricsSettings? Metrics, LoggingSettings Logging) Parse(MappingReader root)
    {
        MetricsSettings? metrics = null;
        if (root.Has("metrics") && root.Mapping("metrics", required: true) is { } m)
        {
            var allowRemote = m.Bool("allowRemote") ?? false;
            if (m.String("listen", required: true, hint: "e.g. listen: 127.0.0.1:9464") is { } listen)
            {
                if (!IPEndPoint.TryParse(listen, out var ep) || ep.Port is < 0 or > 65535 || !listen.Contains(':', StringComparison.Ordinal))
                    m.KeyError("listen", $"'metrics.listen' must be ADDRESS:PORT such as 127.0.0.1:9464, not '{listen}'", "a host name is not accepted: name the address to bind");
                else if (!IPAddress.IsLoopback(ep.Address) && !allowRemote)
                    m.KeyError("listen", $"'metrics.listen' {listen} is not a loopback address",
                        "health and metrics name the engine's dependencies; bind to 127.0.0.1 and scrape through a proxy, or set 'allowRemote: true' if you really mean it");
                else metrics = new MetricsSettings(ep, allowRemote);
            }

            m.Done();
        }

        var logging = LoggingSettings.Default;
        if (root.Has("logging") && root.Mapping("logging", required: true) is { } l)
        {
            if (l.String("format") is { } f)
            {
                if (ParseFormat(f) is { } format) logging = new LoggingSettings(format);
                else l.KeyError("format", $"'logging.format' must be 'json' or 'text', not '{f}'");
            }

            l.Done();
        }

        return (metrics, logging);
    }

    public static LogFormat? ParseFormat(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "json" => LogFormat.Json,
        "text" => LogFormat.Text,
        _ => null,
    };

    /// <summary>The format in effect: <c>--log-json</c>, else <c>PIPELINE_LOG_FORMAT</c>, else the file's setting.</summary>
    public static LogFormat Effective(bool jsonOption, LoggingSettings? file) =>
        jsonOption ? LogFormat.Json
        : ParseFormat(Environment.GetEnvironmentVariable(LoggingSettings.EnvironmentVariable)) is { } env ? env
        : file?.Format ?? LogFormat.Text;
}

/// <summary>
/// systemd credentials: a file setting written <c>credential:NAME</c> names the file <c>$CREDENTIALS_DIRECTORY/NAME</c>
/// that systemd provides for <c>LoadCredential=NAME:/path</c> (readable by the service alone, never on disk under /etc
/// in clear for everyone). Outside systemd, set <c>CREDENTIALS_DIRECTORY</c> yourself.
/// </summary>
public static class Credentials
{
    public const string Prefix = "credential:";
    public const string DirectoryVariable = "CREDENTIALS_DIRECTORY";

    /// <summary>The path a setting names, or an error message (credential name invalid, no credentials directory).</summary>
    public static (string? Path, string? Error) Resolve(string value, string baseDir)
    {
        if (!value.StartsWith(Prefix, StringComparison.Ordinal))
            return (System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, value)), null);
        var name = value[Prefix.Length..];
        if (name.Length == 0 || name.Length > 255 || name is "." or ".." || name.Any(c => c == '/' || char.IsControl(c) || char.IsWhiteSpace(c)))
            return (null, $"'{value}' does not name a systemd credential (credential:NAME, NAME without '/' or spaces)");
        if (Environment.GetEnvironmentVariable(DirectoryVariable) is not { Length: > 0 } dir)
            return (null, $"'{value}' names a systemd credential but ${DirectoryVariable} is not set: the unit needs 'LoadCredential={name}:/path/to/secret'");
        return (System.IO.Path.Combine(dir, name), null);
    }
}
