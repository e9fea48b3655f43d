using System.Text.Json;
using Json.Schema;

namespace Pipeline.Tests.Support;

/// <summary>
/// Validates what the engine emits against the published formats' JSON schemas
/// (<c>Pipeline.Tests/Vectors/schemas</c>, see its README): in-toto Statement v1, SLSA Provenance
/// v1, SPDX 2.3. <c>format</c> is asserted (URIs, date-times), not just annotated.
/// </summary>
public static class JsonSchemas
{
    private static readonly EvaluationOptions Options = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
    private static readonly Lazy<(JsonSchema Statement, JsonSchema Slsa, JsonSchema Spdx)> Schemas = new(Load);

    public static string Folder => Path.Combine(TestServices.RepoRoot, "Pipeline.Tests", "Vectors", "schemas");

    public static JsonSchema InTotoStatement => Schemas.Value.Statement;
    public static JsonSchema SlsaProvenance => Schemas.Value.Slsa;
    public static JsonSchema Spdx23 => Schemas.Value.Spdx;

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

    public static void AssertSpdx(byte[] sbom, string? what = null) =>
        Assert.That(Errors(Spdx23, sbom), Is.Empty, (what ?? "SBOM") + " is not an SPDX 2.3 document");

    private static (JsonSchema, JsonSchema, JsonSchema) Load()
    {
        var build = new BuildOptions { SchemaRegistry = new SchemaRegistry() };
        JsonSchema Read(string file) => JsonSchema.FromText(File.ReadAllText(Path.Combine(Folder, file)), build);
        var statement = Read("in-toto-statement-v1.schema.json");
        var slsa = Read("slsa-provenance-v1.schema.json");
        var spdx = Read("spdx-2.3.schema.json");
        return (statement, slsa, spdx);
    }
}
