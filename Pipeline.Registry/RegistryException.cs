namespace Pipeline.Registry;

/// <summary>
/// A registry or image operation failed. <see cref="Code"/> is stable (e.g. <c>REG-PUSH-001</c>);
/// <see cref="RegistryCode"/> and <see cref="StatusCode"/> carry what the registry said, when it said
/// something; <see cref="IsTransient"/> drives retries. URLs in messages are redacted.
/// </summary>
public class RegistryException(
    string code,
    string message,
    bool isTransient = false,
    int? statusCode = null,
    string? registryCode = null,
    Exception? inner = null) : Exception(message, inner)
{
    public string Code { get; } = code;
    public bool IsTransient { get; } = isTransient;
    public int? StatusCode { get; } = statusCode;
    public string? RegistryCode { get; } = registryCode;

    public override string ToString() => $"{Code}: {Message}";
}
