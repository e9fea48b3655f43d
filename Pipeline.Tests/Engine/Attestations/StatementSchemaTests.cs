using System.Text.RegularExpressions;
using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Attestations;

/// <summary>
/// Every statement the engine signs, for every stage, passed and failed, is a valid in-toto
/// Statement v1; the passed build's is valid SLSA Provenance v1 (schemas in Vectors/schemas). A
/// failed stage's predicate also matches our published schema (docs/attestations); passed stages'
/// predicates need real evidence and are checked end to end (DeliveryEndToEndTests).
/// </summary>
public class StatementSchemaTests
{
    private static readonly DateTimeOffset TagTime = new(2025, 3, 14, 15, 9, 26, TimeSpan.Zero);
    private const string TagId = "1111111111111111111111111111111111111111";
    private const string CommitId = "2222222222222222222222222222222222222222";
    private TempDir _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDir("pipeline-statements-");

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private async Task<DeliveryContext> Context()
    {
        var pipelines = Directory.CreateDirectory(_dir.Combine("pipelines")).FullName;
        var definitionFile = Path.Combine(pipelines, "demo.yaml");
        await File.WriteAllTextAsync(definitionFile, "name: demo\n");
        var settings = new EngineSettings(_dir.Combine("engine.yaml"), pipelines, _dir.Combine("work"), new DatabaseSettings("Host=unused", null),
            new ClamdSettings(["tcp://127.0.0.1:1"], 1, TimeSpan.FromMinutes(1), Pipeline.Checkup.Scanning.ClamdLimits.Defaults),
            new RegistrySettings(new Uri("http://127.0.0.1:1"), null), new InternalGitSettings(new Uri("http://127.0.0.1:1"), null));
        var definition = new PipelineDefinition("demo", definitionFile, "Supplier GmbH", null,
            new SourceSettings(new Uri("https://vcs-a.example/supplier/app.git"), null, new Regex(".")),
            [], new ChecksumSettings("SHA256SUMS", ManifestSignature.Tag, null), new PublishSettings("team/app"), new ImageTargetSettings("apps/demo", []));

        var rootfs = Directory.CreateDirectory(_dir.Combine("rootfs", "etc")).Parent!.FullName;
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "os-release"), "ID=test\n");
        var store = _dir.Combine("blobs");
        var image = await ScratchBaseBuilder.BuildAsync(rootfs, new BlobStore(store), new ImageSettings { Created = TagTime }, TagTime);
        var baseRef = "base/os@sha256:" + new string('3', 64);
        var ctx = new DeliveryContext(Guid.CreateVersion7(), definition, settings, null!, new TagInfo("v1.0.0", TagId, true), _dir.Combine("work", "d1"), TimeProvider.System)
        {
            Annotated = new AnnotatedTag("v1.0.0", TagId, CommitId, "commit", "Supplier <release@supplier.example>", TagTime, "Release v1.0.0\n", CommitId, new string('4', 40)),
            Checksums = new ChecksumReport("sha256", "sha256:" + new string('0', 64), []),
            Signer = "Certified Release Key",
            Delivery = new DeliveryManifest(1, [new ImageSpec("app", baseRef, [], [], [], null, "10001:10001", new Dictionary<string, string>(), [],
                new Dictionary<string, string>())]),
        };
        ctx.Images.Add(new BuiltDeliveryImage("app", "apps/demo/app", "v1.0.0", image, store));
        ctx.PushedImages.Add($"127.0.0.1:5000/apps/demo/app@{image.ManifestDigest}");
        return ctx;
    }

    private static StageOutcome Outcome(string? input, string? output) =>
        new(input, output, new Dictionary<string, string> { ["note"] = "evidence value", ["repository"] = "https://vcs-b.example/team/app.git" });

    [TestCase("fetch")]
    [TestCase("verify")]
    [TestCase("scan")]
    [TestCase("publish")]
    [TestCase("build")]
    [TestCase("push")]
    [TestCase("smoke")]
    public async Task A_passed_stage_statement_is_valid(string stage)
    {
        var ctx = await Context();
        var previous = new List<InTotoStatement>
        {
            StageAttestations.Build(ctx, "scan", Outcome("sha256:" + new string('0', 64), "sha256:" + new string('5', 64)), null, null, TagTime, []),
        };
        var statement = StageAttestations.Build(ctx, stage, Outcome("sha256:" + new string('6', 64), "sha256:" + new string('7', 64)), null, null, TagTime, previous);
        JsonSchemas.AssertStatement(statement.ToJsonBytes(), stage);
        if (stage == "build") Assert.That(statement.PredicateType, Is.EqualTo(PredicateTypes.SlsaProvenance), "the schema check above covered provenance");
    }

    [TestCase("fetch")]
    [TestCase("verify")]
    [TestCase("scan")]
    [TestCase("build")]
    [TestCase("push")]
    public async Task A_failed_stage_statement_is_valid(string stage)
    {
        var ctx = await Context();
        var statement = StageAttestations.Build(ctx, stage, null, "CHK-TEST-001", "it failed for a reason", TagTime, []);
        JsonSchemas.AssertStatementAndPredicate(statement.ToJsonBytes(), stage);
    }

    [Test]
    public void A_statement_from_a_bare_ledger_record_is_valid()
    {
        var record = new StageRecord(Guid.CreateVersion7(), "demo", "promote", Verdict.Failed, "PROMOTE-001", "refused", "sha256:" + new string('8', 64), null,
            new Dictionary<string, string> { ["k"] = "v" });
        JsonSchemas.AssertStatement(StageAttestations.FromRecord(record, TagTime).ToJsonBytes());
    }
}
