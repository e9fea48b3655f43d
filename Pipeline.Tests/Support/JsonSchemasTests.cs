using System.Text;

namespace Pipeline.Tests.Support;

/// <summary>The schemas themselves: a minimal valid document passes, and each kind of defect is named.</summary>
public class JsonSchemasTests
{
    private const string Sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private static byte[] Json(string s) => Encoding.UTF8.GetBytes(s);

    private static string Statement(string subject, string type = "https://pipeline.example/attestations/scan/v1", string predicate = "{}") =>
        $$$"""{"_type":"https://in-toto.io/Statement/v1","subject":[{{{subject}}}],"predicateType":"{{{type}}}","predicate":{{{predicate}}}}""";

    [Test]
    public void A_minimal_statement_is_valid()
    {
        JsonSchemas.AssertStatement(Json(Statement($$$"""{"name":"x","digest":{"sha256":"{{{Sha}}}"}}""")));
    }

    [TestCase("""{"name":"x"}""", "/subject/0", TestName = "subject without digest")]
    [TestCase("""{"digest":{"sha256":"ABC"}}""", "/subject/0/digest/sha256", TestName = "sha256 not lowercase hex of 64")]
    [TestCase("""{"digest":{}}""", "/subject/0/digest", TestName = "empty digest set")]
    public void A_statement_with_a_bad_subject_is_rejected_at_the_subject(string subject, string location)
    {
        var errors = JsonSchemas.Errors(JsonSchemas.InTotoStatement, Json(Statement(subject)));
        Assert.That(errors, Has.Some.StartWith(location + ":"), string.Join("\n", errors));
    }

    [Test]
    public void A_statement_of_another_version_or_without_subjects_is_rejected()
    {
        var v01 = Statement($$$"""{"digest":{"sha256":"{{{Sha}}}"}}""").Replace("Statement/v1", "Statement/v0.1");
        Assert.That(JsonSchemas.Errors(JsonSchemas.InTotoStatement, Json(v01)), Has.Some.StartWith("/_type:"));
        var none = """{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://x.example/p","predicate":{}}""";
        Assert.That(JsonSchemas.Errors(JsonSchemas.InTotoStatement, Json(none)), Has.Some.StartWith("/subject:"));
    }

    [Test]
    public void Provenance_needs_a_build_type_and_a_builder_id_and_rfc3339_times()
    {
        var subject = $$$"""{"digest":{"sha256":"{{{Sha}}}"}}""";
        const string good = """{"buildDefinition":{"buildType":"https://x.example/bt","externalParameters":{}},"runDetails":{"builder":{"id":"https://x.example/b"},"metadata":{"finishedOn":"2025-01-02T03:04:05Z"}}}""";
        JsonSchemas.AssertStatement(Json(Statement(subject, "https://slsa.dev/provenance/v1", good)));

        var noBuilder = good.Replace("""{"id":"https://x.example/b"}""", "{}");
        Assert.That(JsonSchemas.Errors(JsonSchemas.SlsaProvenance, Json(Statement(subject, "https://slsa.dev/provenance/v1", noBuilder))),
            Has.Some.StartWith("/predicate/runDetails/builder:"));
        var localTime = good.Replace("2025-01-02T03:04:05Z", "02.01.2025 03:04");
        Assert.That(JsonSchemas.Errors(JsonSchemas.SlsaProvenance, Json(Statement(subject, "https://slsa.dev/provenance/v1", localTime))),
            Has.Some.StartWith("/predicate/runDetails/metadata/finishedOn:"));
    }

    [Test]
    public void An_spdx_document_without_its_version_is_rejected()
    {
        const string doc = """{"SPDXID":"SPDXRef-DOCUMENT","spdxVersion":"SPDX-2.3","name":"n","dataLicense":"CC0-1.0","documentNamespace":"https://x.example/n","creationInfo":{"created":"2025-01-02T03:04:05Z","creators":["Tool: t"]}}""";
        Assert.That(JsonSchemas.Errors(JsonSchemas.Spdx23, Json(doc)), Is.Empty);
        Assert.That(JsonSchemas.Errors(JsonSchemas.Spdx23, Json(doc.Replace("\"spdxVersion\":\"SPDX-2.3\",", ""))), Has.Some.Contains("spdxVersion"));
    }

    [Test]
    public void Every_predicate_type_the_engine_writes_has_a_published_schema()
    {
        foreach (var stage in new[] { "fetch", "verify", "scan", "publish", "build", "push" })
            Assert.That(JsonSchemas.Predicate($"https://pipeline.example/attestations/{stage}/v1"), Is.Not.Null, stage);
        Assert.That(JsonSchemas.Predicate("https://pipeline.example/buildtypes/delivery-image/v1"), Is.Not.Null, "the build's SLSA buildType");
    }

    [Test]
    public void A_predicate_that_breaks_its_published_schema_is_named()
    {
        var subject = $$$"""{"digest":{"sha256":"{{{Sha}}}"}}""";
        const string predicate = """{"stage":"scan","verdict":"maybe","delivery":{"id":"not-a-uuid","pipeline":"p"},"finishedOn":"2025-01-02T03:04:05Z","materials":[],"evidence":{}}""";
        var ex = Assert.Throws<AssertionException>(() =>
        {
            using var isolated = new NUnit.Framework.Internal.TestExecutionContext.IsolatedContext();
            JsonSchemas.AssertStatementAndPredicate(Json(Statement(subject, "https://pipeline.example/attestations/scan/v1", predicate)));
        });
        Assert.That(ex!.Message, Does.Contain("https://pipeline.example/attestations/scan/v1").And.Contain("/verdict").And.Contain("/delivery/id"));
    }
}
