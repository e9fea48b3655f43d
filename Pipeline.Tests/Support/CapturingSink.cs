using System.Collections.Concurrent;
using Serilog.Core;
using Serilog.Events;

namespace Pipeline.Tests.Support;

/// <summary>Keeps every log event, rendered with its properties, so tests can inspect what was logged.</summary>
public sealed class CapturingSink : ILogEventSink
{
    private readonly ConcurrentQueue<string> _lines = new();

    public IReadOnlyCollection<string> Lines => _lines;

    public void Emit(LogEvent logEvent)
    {
        var props = string.Join(" ", logEvent.Properties.Select(p => $"{p.Key}={p.Value}"));
        _lines.Enqueue($"{logEvent.Level} {logEvent.RenderMessage(System.Globalization.CultureInfo.InvariantCulture)} | {props} {logEvent.Exception}");
    }

    public Serilog.ILogger Logger() => new Serilog.LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(this).CreateLogger();
}
