namespace Pipeline.Checkup;

/// <summary>
/// A check failed. <see cref="Code"/> is stable (e.g. <c>CHK-SIG-003</c>) and names the failed
/// check; the message says what was found and what the user can do. Never carries secrets.
/// </summary>
public class CheckupException(string code, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;

    public override string ToString() => $"{Code}: {Message}";
}
