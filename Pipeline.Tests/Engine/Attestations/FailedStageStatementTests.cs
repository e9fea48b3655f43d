using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Attestations;

/// <summary>A failed stage's statement: it signs the evidence of the checks before the failure, and no engine-local path.</summary>
public class FailedStageStatementTests
{
    [Test]
    public void A_failed_stage_signs_its_evidence_with_the_engine_folders_replaced()
    {
        using var dir = new TempDir("failed-stage-");
        var pipelines = Directory.CreateDirectory(dir.Combine("pipelines")).FullName;
        var work = dir.Combine("work", "runs", "d1");
        var settings = new EngineSettings(dir.Combine("engine.yaml"), pipelines, dir.Combine("work"), new DatabaseSettings("Host=unused", null),
            new ClamdSettings(["tcp://127.0.0.1:1"], 1, TimeSpan.FromMinutes(1), Pipeline.Checkup.Scanning.ClamdLimits.Defaults), new RegistrySettings(new Uri("http://127.0.0.1:1"), null), new InternalGitSettings(new Uri("http://127.0.0.1:1"), null));
        var definition = new PipelineDefinition("demo", Path.Combine(pipelines, "demo.yaml"), "ACME GmbH", null, new SourceSettings(new Uri("http://127.0.0.1:1/acme.git"), null, new System.Text.RegularExpressions.Regex(".")),
            [], new ChecksumSettings("SHA256SUMS", ManifestSignature.Tag, null), new PublishSettings("a/b"), new ImageTargetSettings("apps/x", []));
        var ctx = new DeliveryContext(Guid.CreateVersion7(), definition, settings, null!, new TagInfo("v1.0.0", new string('a', 40), true), work, TimeProvider.System);
        var fetched = new Fetched(new AnnotatedTag("v1.0.0", new string('a', 40), new string('b', 40), "commit", "S <s@example>", DateTimeOffset.UnixEpoch, "v1\n", new string('b', 40), new string('c', 40)),
            ctx.TreeDir, 1, 1);
        var evidence = new Dictionary<string, string>
        {
            ["failedCheck"] = "CHK-CHECKSUM-ROOT",
            ["signer"] = "Release Key",
            ["signerKey"] = "SHA256:abc",
            ["manifestDigest"] = "sha256:" + new string('1', 64),
            ["scratch"] = Path.Combine(settings.WorkDir, "mirrors", "demo.git") + " and " + Path.Combine(Path.GetTempPath(), "x"),
        };

        // The verify step builds its own failure statement from its typed input (what fetch produced) and the failure.
        var failure = new StepFailure("CHK-CHECKSUM-ROOT", $"Cannot read the release tree under '{ctx.TreeDir}': denied", evidence, [], "Release Key (ACME GmbH)");
        var statement = new VerifyStep().AttestFailure(ctx, fetched, failure, DateTimeOffset.UnixEpoch);
        var text = Encoding.UTF8.GetString(statement.ToJsonBytes());
        var predicate = JsonNode.Parse(text)!["predicate"]!;
        Assert.That(predicate["verdict"]!.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(predicate["evidence"]!.AsObject().Select(p => p.Key), Is.EquivalentTo(evidence.Keys), "every check's evidence is signed");
        Assert.That(predicate["evidence"]!["signerKey"]!.GetValue<string>(), Is.EqualTo("SHA256:abc"));
        Assert.That(predicate["reason"]!.GetValue<string>(), Is.EqualTo("Cannot read the release tree under '<delivery>/tree': denied"));
        Assert.That(predicate["evidence"]!["scratch"]!.GetValue<string>(), Is.EqualTo("<workDir>/mirrors/demo.git and <tmp>/x"));
        Assert.That(text, Does.Not.Contain(dir.Path).And.Not.Contain(Path.GetTempPath()));
        Assert.That(LedgerBinding.SignedTime(statement), Is.EqualTo(DateTimeOffset.UnixEpoch));
        Assert.That(predicate["signer"]!.GetValue<string>(), Is.EqualTo("Release Key (ACME GmbH)"), "the signer verify had matched before the failure");
        Assert.That(statement.Subjects.Single().Digest["gitTag"], Is.EqualTo(new string('a', 40)), "no manifest verified yet: the statement is about the tag");
        Assert.That(predicate["materials"]!.AsArray().Select(m => m!["digest"]!.AsObject().Select(d => d.Value!.GetValue<string>()).Single()),
            Is.EqualTo(new[] { new string('a', 40), new string('b', 40) }), "materials: the tag object and the commit fetch produced");
    }
}
