namespace Pipeline.Checkup.Scanning;

/// <summary>Stable error codes for virus scanning with clamd.</summary>
public static class ClamdErrors
{
    /// <summary>The clamd endpoint string is not <c>tcp://host:port</c>, <c>unix:///path</c> or <c>host:port</c>.</summary>
    public const string BadEndpoint = "CHK-AV-001";
    /// <summary>clamd cannot be reached (connection refused, no such socket, DNS failure).</summary>
    public const string Unreachable = "CHK-AV-002";
    /// <summary>Connecting to clamd or waiting for its answer took longer than the configured timeout.</summary>
    public const string Timeout = "CHK-AV-003";
    /// <summary>clamd answered something this client does not understand, or closed the connection early.</summary>
    public const string Protocol = "CHK-AV-004";
    /// <summary>Every endpoint of a <see cref="ClamdPool"/> is down; scanning fails closed.</summary>
    public const string NoHealthyEndpoint = "CHK-AV-005";
    /// <summary>At least one file is infected (raised by <see cref="ScanReport.EnsureClean"/>).</summary>
    public const string Infected = "CHK-AV-010";
    /// <summary>At least one file could not be scanned (raised by <see cref="ScanReport.EnsureClean"/>).</summary>
    public const string ScanError = "CHK-AV-011";
    /// <summary>A path given to the scanner is unsafe, missing or not a regular file.</summary>
    public const string BadFile = "CHK-AV-012";
}

/// <summary>Talking to clamd failed (not a verdict about the content). <see cref="CheckupException.Code"/> is a <see cref="ClamdErrors"/> code.</summary>
public sealed class ClamdException(string code, string message, bool isTransient, Exception? inner = null)
    : CheckupException(code, message, inner)
{
    /// <summary>True when retrying later may succeed (clamd down, timeout).</summary>
    public bool IsTransient { get; } = isTransient;
}
