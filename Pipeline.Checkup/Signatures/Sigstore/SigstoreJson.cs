using System.Globalization;
using System.Text.Json;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>Strict JSON field readers for protobuf-JSON documents; every failure is a CheckupException with the given code.</summary>
internal static class SigstoreJson
{
    public const int MaxDepth = 32;
    public const int MaxDocumentChars = 32 * 1024 * 1024;

    public static JsonDocument ParseDocument(string json, string code, string what)
    {
        ArgumentNullException.ThrowIfNull(json);
        if (json.Length > MaxDocumentChars)
            throw new CheckupException(code, $"{what} is too large ({json.Length} chars, limit {MaxDocumentChars}).");
        try
        {
            var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = MaxDepth, AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                doc.Dispose();
                throw new CheckupException(code, $"{what} must be a JSON object.");
            }
            return doc;
        }
        catch (JsonException ex)
        {
            throw new CheckupException(code, $"{what} is not valid JSON (or nests deeper than {MaxDepth}): {ex.Message}", ex);
        }
    }

    public static JsonElement? Opt(JsonElement obj, string name, string code, string path)
    {
        if (obj.ValueKind != JsonValueKind.Object)
            throw new CheckupException(code, $"{path} must be an object.");
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v;
    }

    public static JsonElement Req(JsonElement obj, string name, string code, string path)
        => Opt(obj, name, code, path) ?? throw new CheckupException(code, $"Required field {path}.{name} is missing.");

    public static JsonElement ReqObj(JsonElement obj, string name, string code, string path)
    {
        var v = Req(obj, name, code, path);
        if (v.ValueKind != JsonValueKind.Object) throw new CheckupException(code, $"{path}.{name} must be an object.");
        return v;
    }

    public static JsonElement? OptObj(JsonElement obj, string name, string code, string path)
    {
        var v = Opt(obj, name, code, path);
        if (v is { } e && e.ValueKind != JsonValueKind.Object) throw new CheckupException(code, $"{path}.{name} must be an object.");
        return v;
    }

    public static IReadOnlyList<JsonElement> Arr(JsonElement obj, string name, string code, string path, int max = 1000)
    {
        var v = Opt(obj, name, code, path);
        if (v is null) return [];
        if (v.Value.ValueKind != JsonValueKind.Array) throw new CheckupException(code, $"{path}.{name} must be an array.");
        var len = v.Value.GetArrayLength();
        if (len > max) throw new CheckupException(code, $"{path}.{name} has {len} items (limit {max}).");
        return [.. v.Value.EnumerateArray()];
    }

    public static string? OptStr(JsonElement obj, string name, string code, string path, int maxChars = 1024 * 1024)
    {
        var v = Opt(obj, name, code, path);
        if (v is null) return null;
        if (v.Value.ValueKind != JsonValueKind.String) throw new CheckupException(code, $"{path}.{name} must be a string.");
        var s = v.Value.GetString()!;
        if (s.Length > maxChars) throw new CheckupException(code, $"{path}.{name} is too long ({s.Length} chars, limit {maxChars}).");
        return s;
    }

    public static string ReqStr(JsonElement obj, string name, string code, string path, int maxChars = 1024 * 1024)
    {
        var s = OptStr(obj, name, code, path, maxChars) ?? throw new CheckupException(code, $"Required field {path}.{name} is missing.");
        if (s.Length == 0) throw new CheckupException(code, $"Required field {path}.{name} is empty.");
        return s;
    }

    /// <summary>Protobuf-JSON int64: a decimal string or a JSON number.</summary>
    public static long? OptInt64(JsonElement obj, string name, string code, string path)
    {
        var v = Opt(obj, name, code, path);
        if (v is null) return null;
        var e = v.Value;
        if (e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var n)) return n;
        if (e.ValueKind == JsonValueKind.String && long.TryParse(e.GetString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out n)) return n;
        throw new CheckupException(code, $"{path}.{name} is not a valid 64-bit integer.");
    }

    /// <summary>Non-negative protobuf int64; absent means 0 (proto3 JSON omits default values).</summary>
    public static long NonNegInt64(JsonElement obj, string name, string code, string path)
    {
        var n = OptInt64(obj, name, code, path) ?? 0;
        if (n < 0) throw new CheckupException(code, $"{path}.{name} is negative ({n}).");
        return n;
    }

    /// <summary>Strict base64 (standard or URL-safe alphabet, no whitespace, correct padding).</summary>
    public static byte[] B64(string s, string code, string path, bool allowEmpty = false)
    {
        if (s.Length == 0)
        {
            if (allowEmpty) return [];
            throw new CheckupException(code, $"{path} is empty.");
        }
        var t = s.Replace('-', '+').Replace('_', '/');
        if (t.Length % 4 != 0 && !t.Contains('=')) t = t.PadRight(t.Length + (4 - t.Length % 4) % 4, '=');
        foreach (var c in t)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '+' || c == '/' || c == '='))
                throw new CheckupException(code, $"{path} is not valid base64 (unexpected character).");
        }
        var buf = new byte[t.Length / 4 * 3 + 3];
        if (t.Length % 4 != 0 || !Convert.TryFromBase64String(t, buf, out var n))
            throw new CheckupException(code, $"{path} is not valid base64.");
        var bytes = buf.AsSpan(0, n).ToArray();
        if (Convert.ToBase64String(bytes) != t)
            throw new CheckupException(code, $"{path} is not canonical base64 (non-zero padding bits or misplaced padding).");
        return bytes;
    }

    public static byte[] ReqB64(JsonElement obj, string name, string code, string path, int maxChars = 8 * 1024 * 1024)
        => B64(ReqStr(obj, name, code, path, maxChars), code, $"{path}.{name}");

    public static DateTimeOffset? OptTime(JsonElement obj, string name, string code, string path)
    {
        var s = OptStr(obj, name, code, path, 64);
        if (s is null) return null;
        if (!DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            throw new CheckupException(code, $"{path}.{name} is not an RFC 3339 time: '{s}'.");
        return t;
    }
}
