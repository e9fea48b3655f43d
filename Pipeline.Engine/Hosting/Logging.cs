using Pipeline.Engine.Configuration;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Pipeline.Engine.Hosting;

/// <summary>
/// Serilog for the engine: structured logs on stderr, readable text or compact JSON (one object per line:
/// <c>@t</c>, <c>@mt</c>, <c>@l</c>, properties) for journald and collectors. Never secrets: templates name
/// values, never credentials, and URLs are logged redacted.
/// </summary>
public static class Logging
{
    public static ILogger Create(bool json, LogEventLevel level = LogEventLevel.Information) => Create(json ? LogFormat.Json : LogFormat.Text, null, level);

    /// <param name="output">Where to write (tests); null: stderr.</param>
    public static ILogger Create(LogFormat format, TextWriter? output, LogEventLevel level = LogEventLevel.Information)
    {
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            .MinimumLevel.Override("Microsoft", LogEventLevel.Warning)
            .MinimumLevel.Override("Quartz", LogEventLevel.Warning)
            .Enrich.FromLogContext();
        const string template = "{Timestamp:HH:mm:ss} {Level:u3} {Message:lj}{NewLine}{Exception}";
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        config = (format, output) switch
        {
            (LogFormat.Json, null) => config.WriteTo.Console(new CompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose),
            (LogFormat.Json, { } w) => config.WriteTo.Sink(new WriterSink(new CompactJsonFormatter(), w)),
            (_, null) => config.WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose, outputTemplate: template, formatProvider: culture),
            (_, { } w) => config.WriteTo.Sink(new WriterSink(new Serilog.Formatting.Display.MessageTemplateTextFormatter(template, culture), w)),
        };
        return config.CreateLogger();
    }

    /// <summary>
    /// The format for a command: <c>--log-json</c>, else <c>PIPELINE_LOG_FORMAT</c>, else engine.yaml <c>logging.format</c>
    /// (read leniently here: a broken file is reported by the command itself, in full).
    /// </summary>
    public static LogFormat FormatFor(bool jsonOption, string configPath)
    {
        LoggingSettings? file = null;
        try
        {
            if (!jsonOption) file = EngineSettingsLoader.Load(configPath).Logging;
        }
        catch (ConfigurationException)
        {
        }

        return OperationsSettingsParser.Effective(jsonOption, file);
    }
}

/// <summary>Writes formatted events to a <see cref="TextWriter"/>, one at a time.</summary>
internal sealed class WriterSink(Serilog.Formatting.ITextFormatter formatter, TextWriter output) : Serilog.Core.ILogEventSink
{
    private readonly Lock _gate = new();

    public void Emit(LogEvent logEvent)
    {
        lock (_gate)
        {
            formatter.Format(logEvent, output);
            output.Flush();
        }
    }
}
