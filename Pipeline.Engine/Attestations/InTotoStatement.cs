using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Engine.Attestations;

/// <summary>An in-toto ResourceDescriptor: a name or URI and a digest set (algorithm → lowercase hex).</summary>
public sealed record ResourceDescriptor(string? Name, IReadOnlyDictionary<string, string> Digest, string? Uri = null)
{
    /// <summary>The digests as <c>algorithm:value</c> strings, the form the log indexes and links by.</summary>
    public IEnumerable<string> DigestStrings => Digest.Select(d => $"{d.Key}:{d.Value}");

    public static ResourceDescriptor Of(string? name, string algorithm, string value, string? uri = null) =>
        new(name, new SortedDictionary<string, string>(StringComparer.Ordinal) { [algorithm] = value }, uri);

    /// <summary>Parses <c>sha256:hex</c> (or <c>sha1:hex</c>); null when it is not of that form.</summary>
    public static ResourceDescriptor? FromDigest(string? name, string? digest, string? uri = null)
    {
        if (digest is null) return null;
        var colon = digest.IndexOf(':');
        if (colon <= 0 || colon == digest.Length - 1) return null;
        return Of(name, digest[..colon], digest[(colon + 1)..], uri);
    }

    internal JsonObject ToJson()
    {
        var o = new JsonObject();
        if (Name is not null) o["name"] = Name;
        if (Uri is not null) o["uri"] = Uri;
        var d = new JsonObject();
        foreach (var (k, v) in Digest.OrderBy(x => x.Key, StringComparer.Ordinal)) d[k] = v;
        o["digest"] = d;
        return o;
    }

    internal static ResourceDescriptor FromJson(JsonNode? n)
    {
        var o = n as JsonObject ?? throw new PipelineException("ATT-STATEMENT-MALFORMED", "a resource descriptor is not an object");
        var digest = new SortedDictionary<string, string>(StringComparer.Ordinal);
        if (o["digest"] is JsonObject d)
        {
            foreach (var (k, v) in d) digest[k] = v?.GetValue<string>() ?? "";
        }

        return new ResourceDescriptor(o["name"]?.GetValue<string>(), digest, o["uri"]?.GetValue<string>());
    }
}

/// <summary>
/// An in-toto Statement v1: what the subjects are, and a typed predicate about them. For linking,
/// <see cref="Materials"/> are what the predicate says the stage consumed (SLSA
/// <c>resolvedDependencies</c>, or <c>materials</c> in our own predicate types).
/// </summary>
public sealed record InTotoStatement(IReadOnlyList<ResourceDescriptor> Subjects, string PredicateType, JsonObject Predicate)
{
    public const string Type = "https://in-toto.io/Statement/v1";

    public IReadOnlyList<ResourceDescriptor> Materials
    {
        get
        {
            var list = PredicateType == PredicateTypes.SlsaProvenance
                ? Predicate["buildDefinition"]?["resolvedDependencies"] as JsonArray
                : Predicate["materials"] as JsonArray;
            return list is null ? [] : list.Select(ResourceDescriptor.FromJson).ToList();
        }
    }

    public byte[] ToJsonBytes()
    {
        var o = new JsonObject
        {
            ["_type"] = Type,
            ["subject"] = new JsonArray(Subjects.Select(s => (JsonNode)s.ToJson()).ToArray()),
            ["predicateType"] = PredicateType,
            ["predicate"] = Predicate.DeepClone(),
        };
        return JsonSerializer.SerializeToUtf8Bytes(o);
    }

    /// <exception cref="PipelineException">ATT-STATEMENT-MALFORMED.</exception>
    public static InTotoStatement Parse(byte[] json)
    {
        const string C = "ATT-STATEMENT-MALFORMED";
        JsonObject o;
        try
        {
            o = JsonNode.Parse(json) as JsonObject ?? throw new PipelineException(C, "the statement is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new PipelineException(C, $"the statement is not JSON: {e.Message}");
        }

        if (o["_type"]?.GetValue<string>() != Type) throw new PipelineException(C, $"the statement's _type is not {Type}");
        var subjects = (o["subject"] as JsonArray ?? throw new PipelineException(C, "the statement has no subject list")).Select(ResourceDescriptor.FromJson).ToList();
        if (subjects.Count == 0) throw new PipelineException(C, "the statement has no subject");
        var type = o["predicateType"]?.GetValue<string>() ?? throw new PipelineException(C, "the statement has no predicateType");
        var predicate = o["predicate"] as JsonObject ?? throw new PipelineException(C, "the statement has no predicate object");
        return new InTotoStatement(subjects, type, (JsonObject)predicate.DeepClone());
    }
}

/// <summary>The predicate types the engine writes. Stable: a change of meaning is a new version (v2), never an edit.</summary>
public static class PredicateTypes
{
    public const string Base = "https://pipeline.example/attestations/";
    public const string SlsaProvenance = "https://slsa.dev/provenance/v1";
    public const string BuildType = "https://pipeline.example/buildtypes/delivery-image/v1";
    public const string BuilderId = "https://pipeline.example/engine/v1";

    /// <summary><c>https://pipeline.example/attestations/{stage}/v1</c> for every stage except a passed build.</summary>
    public static string ForStage(string stage) => Base + stage + "/v1";
}

/// <summary>The delivery facts of a statement, read from either predicate shape (ours or SLSA).</summary>
public sealed record StatementFacts(string? DeliveryId, string? Pipeline, string? Supplier, string? Tag, string Stage, string Verdict, string? ReasonCode, string? Reason, string? Signer, string? PolicyDigest)
{
    public static StatementFacts Of(InTotoStatement s)
    {
        var p = s.Predicate;
        if (s.PredicateType == PredicateTypes.SlsaProvenance)
        {
            var ip = p["buildDefinition"]?["internalParameters"];
            var d = ip?["delivery"];
            return new StatementFacts(Str(d?["id"]), Str(d?["pipeline"]), Str(d?["supplier"]), Str(d?["tag"]), "build", "passed", null, null, Str(ip?["signer"]), Str(ip?["policy"]?["definitionDigest"]));
        }

        var del = p["delivery"];
        return new StatementFacts(Str(del?["id"]), Str(del?["pipeline"]), Str(del?["supplier"]), Str(del?["tag"]), Str(p["stage"]) ?? "?", Str(p["verdict"]) ?? "?",
            Str(p["reasonCode"]), Str(p["reason"]), Str(p["signer"]), Str(p["policy"]?["definitionDigest"]));
    }

    private static string? Str(JsonNode? n) => n is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
