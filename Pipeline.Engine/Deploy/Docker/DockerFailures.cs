using System.Net.Http;
using System.Net.Sockets;
using Docker.DotNet;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>A step of a run ended the run with a stable code (internal control flow of the runner).</summary>
internal sealed class DockerStepException(string code, string message, bool transient = false) : Exception(message)
{
    public string Code { get; } = code;
    public bool Transient { get; } = transient;
}

/// <summary>Classifies what Docker.DotNet throws.</summary>
internal static class DockerFailures
{
    /// <summary>
    /// True when the engine could not be talked to at all (socket missing, refused, reset, no answer
    /// in time): the operator's outage. <paramref name="cancellationToken"/> tells a caller's
    /// cancellation apart from Docker.DotNet's own timeout.
    /// </summary>
    public static bool IsUnreachable(Exception e, CancellationToken cancellationToken) => e switch
    {
        DockerApiException => false,
        OperationCanceledException => !cancellationToken.IsCancellationRequested,
        HttpRequestException or SocketException or IOException or TimeoutException => true,
        AggregateException a => a.InnerExceptions.Any(i => IsUnreachable(i, cancellationToken)),
        _ => e.InnerException is { } inner && IsUnreachable(inner, cancellationToken),
    };

    /// <summary>A pull error that looks like the registry being down rather than the image missing.</summary>
    public static bool LooksLikeOutage(string message) =>
        message.Contains("connection refused", StringComparison.OrdinalIgnoreCase)
        || message.Contains("no such host", StringComparison.OrdinalIgnoreCase)
        || message.Contains("timeout", StringComparison.OrdinalIgnoreCase)
        || message.Contains("i/o timeout", StringComparison.OrdinalIgnoreCase)
        || message.Contains("connection reset", StringComparison.OrdinalIgnoreCase);

    /// <summary>The engine's own message, printable and short (it may quote supplier-controlled text).</summary>
    public static string Describe(Exception e)
    {
        var text = e is DockerApiException api ? api.ResponseBody ?? api.Message : e.Message;
        text = DockerStageSettings.Printable(text.Trim());
        return text.Length > 300 ? text[..300] + "…" : text;
    }
}
