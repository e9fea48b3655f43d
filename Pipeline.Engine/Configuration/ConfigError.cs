namespace Pipeline.Engine.Configuration;

/// <summary>One problem found in a configuration file, with where it is and what to do.</summary>
public sealed record ConfigError(string File, int Line, int Column, string Message, string? Hint = null)
{
    public override string ToString() =>
        $"{File}:{Line}:{Column}: {Message}" + (Hint is null ? "" : $" (hint: {Hint})");
}

/// <summary>All problems found while loading configuration; nothing starts while there are any.</summary>
public sealed class ConfigurationException(IReadOnlyList<ConfigError> errors)
    : Exception(Format(errors))
{
    public const string ErrorCode = "CFG-INVALID";

    public IReadOnlyList<ConfigError> Errors { get; } = errors;

    public string Code => ErrorCode;

    private static string Format(IReadOnlyList<ConfigError> errors) =>
        $"{errors.Count} configuration error(s):" + Environment.NewLine +
        string.Join(Environment.NewLine, errors.Select(e => "  " + e));
}

/// <summary>Collects errors while a file (or several) is read, so that all are reported at once.</summary>
public sealed class ConfigErrors
{
    private readonly List<ConfigError> _errors = [];

    public IReadOnlyList<ConfigError> All => _errors;

    public bool Any => _errors.Count > 0;

    public void Add(ConfigError error) => _errors.Add(error);

    public void Add(string file, int line, int column, string message, string? hint = null) =>
        _errors.Add(new ConfigError(file, line, column, message, hint));

    public void ThrowIfAny()
    {
        if (_errors.Count > 0) throw new ConfigurationException(_errors.ToArray());
    }
}
