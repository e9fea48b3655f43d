namespace Pipeline.Engine;

/// <summary>
/// A pipeline step failed for a reason the engine itself detected (not a checkup or registry
/// error). <see cref="Code"/> is stable; the message says what to do. Never carries secrets.
/// </summary>
public class PipelineException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    public override string ToString() => $"{Code}: {Message}";
}
