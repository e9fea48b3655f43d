using System.Globalization;

namespace Pipeline.Checkup.Manifests;

/// <summary>
/// A node of a supplier's YAML manifest with where it was (1-based line and column). Mutable on
/// purpose: the renderer adapts a freshly loaded copy in place; the checker only reads.
/// </summary>
public abstract class ManifestNode(int line, int column)
{
    public int Line { get; } = line;

    public int Column { get; } = column;
}

/// <summary>A scalar. <see cref="IsString"/> when it was quoted, a block scalar or tagged <c>!!str</c>.</summary>
public sealed class ManifestScalar(string value, bool isString, int line = 0, int column = 0) : ManifestNode(line, column)
{
    public string Value { get; } = value;

    public bool IsString { get; } = isString;

    /// <summary>The scalar is a plain <c>null</c> (also <c>~</c> or empty), as a YAML 1.1 parser (kubectl) reads it.</summary>
    public bool IsNull => !IsString && Value is "" or "~" or "null" or "Null" or "NULL";

    /// <summary>True/false as kubectl's YAML 1.1 parser reads a plain scalar (<c>yes</c>, <c>on</c>, … included); null otherwise.</summary>
    public bool? AsBool => IsString ? null : Value switch
    {
        "true" or "True" or "TRUE" or "yes" or "Yes" or "YES" or "on" or "On" or "ON" or "y" or "Y" => true,
        "false" or "False" or "FALSE" or "no" or "No" or "NO" or "off" or "Off" or "OFF" or "n" or "N" => false,
        _ => null,
    };

    /// <summary>A plain decimal integer; null for anything else (hex, octal, floats, quoted).</summary>
    public long? AsInt => !IsString && Value.Length is > 0 and <= 18 && Value.TrimStart('-', '+').All(char.IsAsciiDigit)
        && long.TryParse(Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : null;
}

public sealed class ManifestSequence(int line = 0, int column = 0) : ManifestNode(line, column)
{
    public List<ManifestNode> Items { get; } = [];
}

/// <summary>A mapping with string keys, in document order (duplicate keys are refused when loading).</summary>
public sealed class ManifestMapping(int line = 0, int column = 0) : ManifestNode(line, column)
{
    public List<KeyValuePair<ManifestScalar, ManifestNode>> Entries { get; } = [];

    public ManifestNode? this[string key] => Entries.FirstOrDefault(e => e.Key.Value == key).Value;

    public ManifestMapping? Map(string key) => this[key] as ManifestMapping;

    public ManifestSequence? Seq(string key) => this[key] as ManifestSequence;

    public ManifestScalar? Scalar(string key) => this[key] as ManifestScalar;

    /// <summary>The text of a scalar value (null when absent, null-valued or not a scalar).</summary>
    public string? Text(string key) => Scalar(key) is { IsNull: false } s ? s.Value : null;

    public bool Has(string key) => Entries.Any(e => e.Key.Value == key);

    /// <summary>Replaces the value of <paramref name="key"/>, or appends the key when missing.</summary>
    public void Set(string key, ManifestNode value)
    {
        var i = Entries.FindIndex(e => e.Key.Value == key);
        if (i >= 0) Entries[i] = new(Entries[i].Key, value);
        else Entries.Add(new(new ManifestScalar(key, false), value));
    }

    /// <summary>The mapping under <paramref name="key"/>, created (empty) when missing or null.</summary>
    public ManifestMapping GetOrAddMap(string key)
    {
        if (Map(key) is { } m) return m;
        var created = new ManifestMapping();
        Set(key, created);
        return created;
    }
}

/// <summary>One YAML document of a manifest file: a Kubernetes object (or a kustomization).</summary>
/// <param name="File">Path relative to the manifests folder.</param>
/// <param name="Index">0-based position of the document in its file.</param>
public sealed record ManifestDocument(string File, int Index, ManifestMapping Root)
{
    public string? ApiVersion => Root.Text("apiVersion");

    public string? Kind => Root.Text("kind");

    public string? Name => Root.Map("metadata")?.Text("name");
}
