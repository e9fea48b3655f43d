using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Pipeline.Engine.Configuration;

/// <summary>
/// Strict reading of small YAML documents written by people (pipeline definitions, policies,
/// <c>delivery.yaml</c>). Unknown keys, wrong types, duplicate keys, anchors/aliases and oversized
/// input are errors with file and line; every error is collected, none is thrown on its own.
/// </summary>
public static class YamlReader
{
    /// <summary>Largest YAML file we read at all (hostile input must not exhaust memory).</summary>
    public const int MaxBytes = 1024 * 1024;

    /// <summary>Loads the top-level mapping of <paramref name="text"/>, or returns null with errors added.</summary>
    /// <param name="expandEnvironment">Expand <c>${NAME}</c> in values from the environment (operator
    /// files only; never for files that come from a supplier).</param>
    public static MappingReader? Load(string file, string text, ConfigErrors errors, bool expandEnvironment = false)
    {
        if (text.Length > MaxBytes)
        {
            errors.Add(file, 1, 1, $"file is larger than {MaxBytes} bytes", "split it or remove what is not needed");
            return null;
        }

        // First pass over the raw events: reject aliases (billion-laughs style expansion) and
        // nesting deeper than any of our schemas needs.
        try
        {
            var parser = new Parser(new StringReader(text));
            var depth = 0;
            while (parser.MoveNext())
            {
                switch (parser.Current)
                {
                    case AnchorAlias alias:
                        errors.Add(file, (int)alias.Start.Line, (int)alias.Start.Column,
                            "YAML aliases (*name) are not allowed", "write the value out in full");
                        return null;
                    case MappingStart or SequenceStart:
                        if (++depth > 32)
                        {
                            errors.Add(file, (int)parser.Current.Start.Line, (int)parser.Current.Start.Column,
                                "nesting is deeper than 32 levels");
                            return null;
                        }
                        break;
                    case MappingEnd or SequenceEnd:
                        depth--;
                        break;
                }
            }
        }
        catch (YamlException e)
        {
            errors.Add(file, (int)e.Start.Line, (int)e.Start.Column, "not valid YAML: " + Clean(e.Message));
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // The YAML library can fail outside its own exception type on malformed input.
            errors.Add(file, 1, 1, "not valid YAML: the parser gave up (" + e.GetType().Name + ")", "check quoting and indentation");
            return null;
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            errors.Add(file, (int)e.Start.Line, (int)e.Start.Column, "not valid YAML: " + Clean(e.Message));
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            errors.Add(file, 1, 1, "not valid YAML: the parser gave up (" + e.GetType().Name + ")", "check quoting and indentation");
            return null;
        }

        if (stream.Documents.Count != 1)
        {
            errors.Add(file, 1, 1, stream.Documents.Count == 0 ? "the file is empty" : "only one YAML document is allowed per file");
            return null;
        }

        if (stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            var n = stream.Documents[0].RootNode;
            errors.Add(file, (int)n.Start.Line, (int)n.Start.Column, "the top level must be a mapping (key: value)");
            return null;
        }

        return new MappingReader(file, root, errors, "", expandEnvironment);
    }

    private static string Clean(string message)
    {
        // YamlDotNet prefixes "(Line: 1, Col: 2, Idx: 3) - (Line: ...): "; we report the position ourselves.
        var i = message.LastIndexOf("): ", StringComparison.Ordinal);
        return i >= 0 ? message[(i + 3)..] : message;
    }
}

/// <summary>Reads the keys of one YAML mapping; call <see cref="Done"/> to report unknown keys.</summary>
public sealed class MappingReader
{
    private readonly YamlMappingNode _node;
    private readonly ConfigErrors _errors;
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (YamlScalarNode Key, YamlNode Value)> _entries = new(StringComparer.Ordinal);

    private readonly bool _expand;

    internal MappingReader(string file, YamlMappingNode node, ConfigErrors errors, string path, bool expand)
    {
        _expand = expand;
        File = file;
        _node = node;
        _errors = errors;
        Path = path;
        foreach (var (k, v) in node.Children)
        {
            if (k is not YamlScalarNode key || key.Value is null)
            {
                Error(k, "keys must be plain strings");
                continue;
            }

            if (!_entries.TryAdd(key.Value, (key, v)))
                Error(k, $"duplicate key '{Qualify(key.Value)}'");
        }
    }

    public string File { get; }

    /// <summary>The dotted path of this mapping inside the document ("" for the root).</summary>
    public string Path { get; }

    public int Line => (int)_node.Start.Line;

    public ConfigErrors Errors => _errors;

    public bool Has(string key) => _entries.ContainsKey(key);

    public void Error(string message, string? hint = null) => Error(_node, message, hint);

    public void Error(YamlNode node, string message, string? hint = null) =>
        _errors.Add(File, (int)node.Start.Line, (int)node.Start.Column, message, hint);

    public void KeyError(string key, string message, string? hint = null)
    {
        if (_entries.TryGetValue(key, out var e)) Error(e.Value, message, hint);
        else Error(message, hint);
    }

    private YamlNode? Take(string key, bool required, string? hint = null)
    {
        _seen.Add(key);
        if (_entries.TryGetValue(key, out var e))
        {
            if (e.Value is YamlScalarNode { Value: null or "" or "~" or "null", Style: ScalarStyle.Plain } && required)
            {
                Error(e.Value, $"'{Qualify(key)}' must not be empty", hint);
                return null;
            }

            return e.Value;
        }

        if (required) Error($"missing required key '{Qualify(key)}'", hint);
        return null;
    }

    public string? String(string key, bool required = false, string? hint = null)
    {
        var n = Take(key, required, hint);
        if (n is null) return null;
        if (n is YamlScalarNode s) return _expand ? Expand(s, s.Value) : s.Value;
        Error(n, $"'{Qualify(key)}' must be a single value, not a list or mapping", hint);
        return null;
    }

    /// <summary>A string that must match <paramref name="pattern"/>.</summary>
    public string? String(string key, Regex pattern, string what, bool required = false)
    {
        var v = String(key, required);
        if (v is not null && !pattern.IsMatch(v))
        {
            KeyError(key, $"'{Qualify(key)}' is not a valid {what}: '{Truncate(v)}'");
            return null;
        }

        return v;
    }

    public int? Int(string key, int min, int max, bool required = false)
    {
        var v = String(key, required);
        if (v is null) return null;
        if (int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) && i >= min && i <= max) return i;
        KeyError(key, $"'{Qualify(key)}' must be a whole number from {min} to {max}, not '{Truncate(v)}'");
        return null;
    }

    public long? Size(string key, bool required = false)
    {
        var v = String(key, required);
        if (v is null) return null;
        if (ByteSize.TryParse(v, out var size)) return size;
        KeyError(key, $"'{Qualify(key)}' must be a size such as 512, 64KiB, 100MiB or 2GiB, not '{Truncate(v)}'");
        return null;
    }

    public bool? Bool(string key, bool required = false)
    {
        var v = String(key, required);
        if (v is null) return null;
        switch (v)
        {
            case "true": return true;
            case "false": return false;
            default:
                KeyError(key, $"'{Qualify(key)}' must be true or false, not '{Truncate(v)}'");
                return null;
        }
    }

    public DateTimeOffset? Date(string key, bool required = false)
    {
        var v = String(key, required);
        if (v is null) return null;
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d)) return d;
        KeyError(key, $"'{Qualify(key)}' must be a date like 2026-01-31 or 2026-01-31T12:00:00Z, not '{Truncate(v)}'");
        return null;
    }

    public T? Enum<T>(string key, bool required = false) where T : struct, System.Enum
    {
        var v = String(key, required);
        if (v is null) return null;
        foreach (var name in System.Enum.GetNames<T>())
        {
            if (string.Equals(ToKebab(name), v, StringComparison.Ordinal)) return System.Enum.Parse<T>(name);
        }

        KeyError(key, $"'{Qualify(key)}' must be one of {string.Join(", ", System.Enum.GetNames<T>().Select(ToKebab))}, not '{Truncate(v)}'");
        return null;
    }

    public IReadOnlyList<string> StringList(string key, bool required = false)
    {
        var n = Take(key, required);
        if (n is null) return [];
        if (n is YamlScalarNode s && s.Value is { Length: > 0 } one && s.Style == ScalarStyle.Plain && !required) return [one];
        if (n is not YamlSequenceNode seq)
        {
            Error(n, $"'{Qualify(key)}' must be a list");
            return [];
        }

        var list = new List<string>();
        foreach (var item in seq.Children)
        {
            if (item is YamlScalarNode { Value: not null } v) list.Add(v.Value);
            else Error(item, $"every item of '{Qualify(key)}' must be a single value");
        }

        if (required && seq.Children.Count == 0) Error(n, $"'{Qualify(key)}' must not be empty");
        return list;
    }

    public IReadOnlyDictionary<string, string> StringMap(string key)
    {
        var n = Take(key, false);
        if (n is null) return new Dictionary<string, string>();
        if (n is not YamlMappingNode map)
        {
            Error(n, $"'{Qualify(key)}' must be a mapping (name: value)");
            return new Dictionary<string, string>();
        }

        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            if (k is YamlScalarNode { Value: { } name } && v is YamlScalarNode { Value: var value })
            {
                if (!result.TryAdd(name, value ?? "")) Error(k, $"duplicate key '{Qualify(key)}.{name}'");
            }
            else Error(k, $"every entry of '{Qualify(key)}' must be name: value");
        }

        return result;
    }

    public MappingReader? Mapping(string key, bool required = false)
    {
        var n = Take(key, required);
        if (n is null) return null;
        if (n is YamlMappingNode m) return new MappingReader(File, m, _errors, Qualify(key), _expand);
        Error(n, $"'{Qualify(key)}' must be a mapping (key: value)");
        return null;
    }

    public IReadOnlyList<MappingReader> MappingList(string key, bool required = false)
    {
        var n = Take(key, required);
        if (n is null) return [];
        if (n is not YamlSequenceNode seq)
        {
            Error(n, $"'{Qualify(key)}' must be a list");
            return [];
        }

        var list = new List<MappingReader>();
        var i = 0;
        foreach (var item in seq.Children)
        {
            if (item is YamlMappingNode m) list.Add(new MappingReader(File, m, _errors, $"{Qualify(key)}[{i}]", _expand));
            else Error(item, $"every item of '{Qualify(key)}' must be a mapping (key: value)");
            i++;
        }

        if (required && list.Count == 0 && seq.Children.Count == 0) Error(n, $"'{Qualify(key)}' must not be empty");
        return list;
    }

    /// <summary>Reports every key of this mapping that was not read (unknown keys, usually typos).</summary>
    public void Done()
    {
        foreach (var (name, (key, _)) in _entries)
        {
            if (_seen.Contains(name)) continue;
            var known = _seen.OrderBy(k => Distance(k, name)).FirstOrDefault();
            Error(key, $"unknown key '{Qualify(name)}'",
                known is not null && Distance(known, name) <= 3 ? $"did you mean '{known}'?" : $"known keys here: {string.Join(", ", _seen.Order(StringComparer.Ordinal))}");
        }
    }

    private static readonly Regex EnvReference = new(@"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", RegexOptions.CultureInvariant);

    private string? Expand(YamlNode node, string? value)
    {
        if (value is null || !value.Contains("${", StringComparison.Ordinal)) return value;
        return EnvReference.Replace(value, m =>
        {
            var v = Environment.GetEnvironmentVariable(m.Groups[1].Value);
            if (v is not null) return v;
            Error(node, $"environment variable '{m.Groups[1].Value}' is not set", "set it, or write the value out");
            return "";
        });
    }

    private string Qualify(string key) => Path.Length == 0 ? key : Path + "." + key;

    private static string Truncate(string v) => v.Length <= 80 ? v : v[..77] + "...";

    internal static string ToKebab(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));

    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        for (var j = 1; j <= b.Length; j++)
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}

/// <summary>Sizes written by people: 512, 64KiB, 100MiB, 2GiB (also KB/MB/GB as powers of 1000).</summary>
public static class ByteSize
{
    private static readonly Regex Pattern = new(@"^\s*(\d+)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$", RegexOptions.CultureInvariant);

    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        var m = Pattern.Match(text);
        if (!m.Success || !long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return false;
        long factor = m.Groups[2].Value switch
        {
            "" or "B" => 1,
            "KiB" => 1L << 10, "MiB" => 1L << 20, "GiB" => 1L << 30, "TiB" => 1L << 40,
            "KB" => 1_000, "MB" => 1_000_000, "GB" => 1_000_000_000, "TB" => 1_000_000_000_000,
            _ => 0,
        };
        if (factor == 0 || n > long.MaxValue / factor) return false;
        bytes = n * factor;
        return true;
    }
}
