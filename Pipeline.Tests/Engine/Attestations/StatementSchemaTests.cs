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
    private TempDir _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDir("pipeline-statements-");

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private const string Signer = IntakeChain.Signer;
    private static readonly DateTimeOffset TagTime = IntakeChain.TagTime;

    private Task<IntakeChain> Delivery() => IntakeChain.BuildAsync(_dir);

    private static StageOutcome Outcome(string? input, string? output) =>
        new(input, output, new Dictionary<string, string> { ["note"] = "evidence value", ["repository"] = "https://vcs-b.example/team/app.git" });

    private static StepResult<T> Result<T>(T output) where T : class => new(output, Outcome("sha256:" + new string('6', 64), "sha256:" + new string('7', 64)));

    /// <summary>Each step's own statement of its pass, built from its typed input and output.</summary>
    private static InTotoStatement Passed(IntakeChain c, string stage) => stage switch
    {
        "fetch" => new FetchStep(ExportLimits.Default).Attest(c.Ctx, c.Input, Result(c.Fetched), TagTime),
        "verify" => new VerifyStep().Attest(c.Ctx, c.Fetched, Result(c.Verified), TagTime),
        "scan" => new ScanStep().Attest(c.Ctx, new ScanInput(c.Verified), Result(c.Scanned), TagTime),
        "publish" => new PublishStep().Attest(c.Ctx, c.Scanned, Result(c.Published), TagTime),
        "build" => new BuildStep().Attest(c.Ctx, new BuildInput(c.Published), Result(c.Built), TagTime),
        "push" => new PushStep().Attest(c.Ctx, new PushInput(c.Built), Result(c.Pushed), TagTime),
        _ => StageAttestations.ForOutcome(c.Ctx, stage, Signer, Outcome("sha256:" + new string('6', 64), "sha256:" + new string('7', 64)), TagTime),
    };

    /// <summary>Each step's own statement of its failure, from its typed input and the failure.</summary>
    private static InTotoStatement Failed(IntakeChain c, string stage, StepFailure f) => stage switch
    {
        "fetch" => new FetchStep(ExportLimits.Default).AttestFailure(c.Ctx, c.Input, f, TagTime),
        "verify" => new VerifyStep().AttestFailure(c.Ctx, c.Fetched, f, TagTime),
        "scan" => new ScanStep().AttestFailure(c.Ctx, new ScanInput(c.Verified), f, TagTime),
        "publish" => new PublishStep().AttestFailure(c.Ctx, c.Scanned, f, TagTime),
        "build" => new BuildStep().AttestFailure(c.Ctx, new BuildInput(c.Published), f, TagTime),
        "push" => new PushStep().AttestFailure(c.Ctx, new PushInput(c.Built), f, TagTime),
        _ => throw new ArgumentException(stage),
    };

    [TestCase("fetch")]
    [TestCase("verify")]
    [TestCase("scan")]
    [TestCase("publish")]
    [TestCase("build")]
    [TestCase("push")]
    [TestCase("smoke")]
    public async Task A_passed_stage_statement_is_valid(string stage)
    {
        var statement = Passed(await Delivery(), stage);
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
        var statement = Failed(await Delivery(), stage, new StepFailure("CHK-TEST-001", "it failed for a reason", new Dictionary<string, string>(), [], Signer));
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
