using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pipeline.Registry.Model;

/// <summary>
/// Canonical writing and strict reading of OCI JSON documents. Writing: fixed property order,
/// no indentation, nulls omitted, map keys sorted ordinally, relaxed escaping (so <c>+</c> stays
/// readable). Reading: duplicate properties rejected, bounded depth, every field type-checked.
/// </summary>
internal static partial class OciJson
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = false,
    };

    private static readonly JsonDocumentOptions ReaderOptions = new()
    {
        AllowTrailingCommas = false,
        CommentHandling = JsonCommentHandling.Disallow,
        MaxDepth = 32,
        AllowDuplicateProperties = false,
    };

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$", RegexOptions.CultureInvariant)]
    private static partial Regex MediaTypeRegex();

    public static bool IsValidMediaType(string? value) => value is not null && MediaTypeRegex().IsMatch(value);

    public static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            body(writer);
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static JsonDocument Parse(ReadOnlyMemory<byte> bytes, string code, string what)
    {
        try
        {
            return JsonDocument.Parse(bytes, ReaderOptions);
        }
        catch (JsonException ex)
        {
            throw new RegistryException(code, $"The {what} is not valid JSON: {ex.Message}", inner: ex);
        }
    }

    public static string FormatTime(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture);

    public static DateTimeOffset ParseTime(string value, string code, string field)
    {
        // RFC 3339; Go writes up to 9 fractional digits, .NET parses 7: trim the excess.
        var text = FractionTooLong().Replace(value, m => m.Groups[1].Value);
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var result))
            return result;
        throw new RegistryException(code, $"Field '{field}' is not an RFC 3339 time: '{Digest.Printable(value)}'.");
    }

    [GeneratedRegex(@"(\.\d{7})\d+", RegexOptions.CultureInvariant)]
    private static partial Regex FractionTooLong();

    public static void WriteMap(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, string>? map)
    {
        if (map is null) return;
        w.WriteStartObject(name);
        foreach (var key in map.Keys.OrderBy(k => k, StringComparer.Ordinal)) w.WriteString(key, map[key]);
        w.WriteEndObject();
    }

    public static void WriteArray(Utf8JsonWriter w, string name, IEnumerable<string>? values)
    {
        if (values is null) return;
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    /// <summary>Writes unknown fields (raw JSON values) sorted by name; names that clash with known fields are skipped.</summary>
    public static void WriteExtra(Utf8JsonWriter w, IReadOnlyDictionary<string, string>? extra, IReadOnlySet<string> known)
    {
        if (extra is null) return;
        foreach (var key in extra.Keys.Where(k => !known.Contains(k)).OrderBy(k => k, StringComparer.Ordinal))
        {
            w.WritePropertyName(key);
            w.WriteRawValue(extra[key], skipInputValidation: false);
        }
    }

    public static void WriteOptional(Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null) w.WriteString(name, value);
    }

    // ---- reading ----

    public sealed record Reader(JsonElement Element, string Code, string Path)
    {
        public Reader Object()
        {
            if (Element.ValueKind != JsonValueKind.Object) throw Fail($"'{Path}' must be a JSON object");
            return this;
        }

        private bool TryGet(string name, out JsonElement value)
        {
            if (Element.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null) return true;
            value = default;
            return false;
        }

        public RegistryException Fail(string reason) => new(Code, reason + ".");

        private string Child(string name) => Path.Length == 0 ? name : Path + "." + name;

        public string RequiredString(string name) =>
            OptionalString(name) ?? throw Fail($"'{Child(name)}' is required");

        public string? OptionalString(string name)
        {
            if (!TryGet(name, out var v)) return null;
            if (v.ValueKind != JsonValueKind.String) throw Fail($"'{Child(name)}' must be a string");
            return v.GetString();
        }

        public long RequiredInt64(string name)
        {
            if (!TryGet(name, out var v)) throw Fail($"'{Child(name)}' is required");
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out var n)) throw Fail($"'{Child(name)}' must be an integer");
            return n;
        }

        public bool OptionalBool(string name)
        {
            if (!TryGet(name, out var v)) return false;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw Fail($"'{Child(name)}' must be a boolean"),
            };
        }

        public Reader? OptionalObject(string name)
        {
            if (!TryGet(name, out var v)) return null;
            return new Reader(v, Code, Child(name)).Object();
        }

        public Reader RequiredObject(string name) =>
            OptionalObject(name) ?? throw Fail($"'{Child(name)}' is required");

        public IReadOnlyList<Reader>? OptionalArray(string name)
        {
            if (!TryGet(name, out var v)) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Fail($"'{Child(name)}' must be an array");
            var list = new List<Reader>();
            var i = 0;
            foreach (var item in v.EnumerateArray()) list.Add(new Reader(item, Code, $"{Child(name)}[{i++}]"));
            return list;
        }

        public IReadOnlyList<string>? OptionalStringArray(string name)
        {
            var items = OptionalArray(name);
            if (items is null) return null;
            return items.Select(r => r.Element.ValueKind == JsonValueKind.String
                ? r.Element.GetString()!
                : throw Fail($"'{r.Path}' must be a string")).ToArray();
        }

        public IReadOnlyDictionary<string, string>? OptionalStringMap(string name)
        {
            var obj = OptionalObject(name);
            if (obj is null) return null;
            var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in obj.Element.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String) throw Fail($"'{obj.Path}.{p.Name}' must be a string");
                map[p.Name] = p.Value.GetString()!;
            }
            return map;
        }

        /// <summary>Fields not in <paramref name="known"/>, as raw JSON text (null when there are none).</summary>
        public IReadOnlyDictionary<string, string>? Unknown(IReadOnlySet<string> known)
        {
            SortedDictionary<string, string>? map = null;
            foreach (var p in Element.EnumerateObject())
            {
                if (known.Contains(p.Name)) continue;
                map ??= new SortedDictionary<string, string>(StringComparer.Ordinal);
                map[p.Name] = p.Value.GetRawText();
            }
            return map;
        }

        /// <summary>Keys of an object whose values must be empty objects (ExposedPorts, Volumes).</summary>
        public IReadOnlyList<string>? OptionalKeySet(string name)
        {
            var obj = OptionalObject(name);
            if (obj is null) return null;
            var keys = new List<string>();
            foreach (var p in obj.Element.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Object) throw Fail($"'{obj.Path}.{p.Name}' must be an object");
                keys.Add(p.Name);
            }
            keys.Sort(StringComparer.Ordinal);
            return keys;
        }
    }
}
