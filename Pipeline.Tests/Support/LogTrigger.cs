using System.Collections.Concurrent;
using Serilog.Core;
using Serilog.Events;

namespace Pipeline.Tests.Support;

/// <summary>
/// A log sink that runs an action, synchronously and once, when the engine logs that a stage
/// passed: the engine goes on only after the action (e.g. killing a service) is done. This is
/// how tests cut a run at an exact stage boundary without sleeping.
/// </summary>
public sealed class LogTrigger(string passedStage, Action action) : ILogEventSink
{
    private int _fired;
    private readonly ConcurrentQueue<string> _lines = new();

    public bool Fired => Volatile.Read(ref _fired) == 1;

    public IReadOnlyCollection<string> Lines => _lines;

    public void Emit(LogEvent logEvent)
    {
        _lines.Enqueue($"{logEvent.Level} {logEvent.RenderMessage(System.Globalization.CultureInfo.InvariantCulture)}");
        if (logEvent.MessageTemplate.Text.StartsWith("Stage {Stage} passed", StringComparison.Ordinal)
            && logEvent.Properties.TryGetValue("Stage", out var v) && v is ScalarValue { Value: string stage } && stage == passedStage
            && Interlocked.Exchange(ref _fired, 1) == 0)
            action();
    }

    public Serilog.ILogger Logger() => new Serilog.LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(this).CreateLogger();
}
