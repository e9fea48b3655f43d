using System.Text.Json;
using Json.Schema;

namespace Pipeline.Tests.Support;

/// <summary>
/// Validates what the engine emits against the published formats' JSON schemas
/// (<c>Pipeline.Tests/Vectors/schemas</c>, see its README): in-toto Statement v1, SLSA Provenance
/// v1, SPDX 2.3; and our own predicate types against their published schemas in
/// <c>docs/attestations</c>. <c>format</c> is asserted (URIs, date-times, UUIDs), not just annotated.
/// </summary>
public static class JsonSchemas
{
    private static readonly EvaluationOptions Options = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
    private static readonly Lazy<(JsonSchema Statement, JsonSchema Slsa, JsonSchema Spdx, IReadOnlyDictionary<string, JsonSchema> Predicates)> Schemas = new(Load);

    public static string Folder => Path.Combine(TestServices.RepoRoot, "Pipeline.Tests", "Vectors", "schemas");

    public static JsonSchema InTotoStatement => Schemas.Value.Statement;
    public static JsonSchema SlsaProvenance => Schemas.Value.Slsa;
    public static JsonSchema Spdx23 => Schemas.Value.Spdx;

    /// <summary>The schema of our predicate type (or SLSA buildType) <paramref name="typeUri"/>: <c>docs/attestations</c>, <c>$id</c> = type URI + <c>.schema.json</c>.</summary>
    public static JsonSchema? Predicate(string typeUri) => Schemas.Value.Predicates.GetValueOrDefault(typeUri + ".schema.json");

    /// <summary>Every violation as <c>instance-location: message</c>; empty when <paramref name="json"/> is valid.</summary>
    public static IReadOnlyList<string> Errors(JsonSchema schema, byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        var result = schema.Evaluate(doc.RootElement, Options);
        if (result.IsValid) return [];
        var errors = (result.Details ?? [])
            .Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key}: {e.Value}"))
            .ToList();
        return errors.Count > 0 ? errors : ["(invalid, no detail)"];
    }

    /// <summary>Asserts that <paramref name="statement"/> is an in-toto Statement v1 and, when its predicate type is SLSA Provenance v1, valid provenance.</summary>
    public static void AssertStatement(byte[] statement, string? what = null)
    {
        Assert.That(Errors(InTotoStatement, statement), Is.Empty, (what ?? "statement") + " is not an in-toto Statement v1");
        using var doc = JsonDocument.Parse(statement);
        if (doc.RootElement.GetProperty("predicateType").GetString() == "https://slsa.dev/provenance/v1")
            Assert.That(Errors(SlsaProvenance, statement), Is.Empty, (what ?? "statement") + " is not SLSA Provenance v1");
    }

    /// <summary>
    /// Asserts the statement as <see cref="AssertStatement"/> does, and its predicate against the published
    /// schema of its type (ours, or for SLSA provenance the schema of its buildType); a type without a schema fails.
    /// </summary>
    public static void AssertStatementAndPredicate(byte[] statement, string? what = null)
    {
        AssertStatement(statement, what);
        using var doc = JsonDocument.Parse(statement);
        var root = doc.RootElement;
        var type = root.GetProperty("predicateType").GetString()!;
        var schemaType = type == "https://slsa.dev/provenance/v1"
            ? root.GetProperty("predicate").GetProperty("buildDefinition").GetProperty("buildType").GetString()!
            : type;
        var schema = Predicate(schemaType);
        Assert.That(schema, Is.Not.Null, $"{what ?? "statement"}: no schema in docs/attestations for {schemaType}");
        var predicate = JsonSerializer.SerializeToUtf8Bytes(root.GetProperty("predicate"));
        Assert.That(Errors(schema!, predicate), Is.Empty, $"{what ?? "statement"}: the predicate does not match the schema of {schemaType}");
    }

    public static void AssertSpdx(byte[] sbom, string? what = null) =>
        Assert.That(Errors(Spdx23, sbom), Is.Empty, (what ?? "SBOM") + " is not an SPDX 2.3 document");

    private static (JsonSchema, JsonSchema, JsonSchema, IReadOnlyDictionary<string, JsonSchema>) Load()
    {
        var build = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        JsonSchema Read(string path) => JsonSchema.FromText(File.ReadAllText(path), build);
        var statement = Read(Path.Combine(Folder, "in-toto-statement-v1.schema.json"));
        var slsa = Read(Path.Combine(Folder, "slsa-provenance-v1.schema.json"));
        var spdx = Read(Path.Combine(Folder, "spdx-2.3.schema.json"));
        // Ours: stage-common first, the others $ref it by its $id.
        var ours = Directory.GetFiles(Path.Combine(TestServices.RepoRoot, "docs", "attestations"), "*.schema.json")
            .OrderBy(f => Path.GetFileName(f) == "stage-common-v1.schema.json" ? 0 : 1).ThenBy(f => f, StringComparer.Ordinal);
        var predicates = new Dictionary<string, JsonSchema>(StringComparer.Ordinal);
        foreach (var file in ours)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            predicates[doc.RootElement.GetProperty("$id").GetString()!] = Read(file);
        }

        return (statement, slsa, spdx, predicates);
    }
}
