using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Attestations;

/// <summary>
/// Each intake step builds its own statement from its typed input and output (or its failure):
/// the subjects and materials that link the steps by digest, the signer verify established, and
/// what a failed step had established before it failed.
/// </summary>
public class StepStatementTests
{
    private TempDir _dir = null!;
    private IntakeChain _c = null!;

    [SetUp]
    public async Task SetUp()
    {
        _dir = new TempDir("pipeline-step-statements-");
        _c = await IntakeChain.BuildAsync(_dir);
    }

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private static readonly DateTimeOffset At = IntakeChain.TagTime;
    private static readonly string TagUri = "https://vcs-a.example/supplier/app.git#refs/tags/v1.0.0";
    private static string Manifest => "sha256:" + new string('0', 64);

    private static StepResult<T> Result<T>(T output) where T : class =>
        new(output, new StageOutcome("sha256:" + new string('6', 64), "sha256:" + new string('7', 64), new Dictionary<string, string> { ["k"] = "v" }));

    private static StepFailure Failure(IReadOnlyList<ResourceDescriptor>? established = null, string? signer = null) =>
        new("X-FAILED", "it failed", new Dictionary<string, string> { ["failedCheck"] = "X-FAILED" }, established ?? [], signer);

    /// <summary>Subjects or materials as "name=algorithm:value".</summary>
    private static string[] Names(IEnumerable<ResourceDescriptor> ds) => ds.Select(d => $"{d.Name}={string.Join(",", d.Digest.Select(x => $"{x.Key}:{x.Value}"))}").ToArray();

    private static string[] Materials(InTotoStatement s) =>
        (s.Predicate["materials"] ?? s.Predicate["buildDefinition"]!["resolvedDependencies"])!.AsArray()
        .Select(m => $"{m!["name"]?.GetValue<string>()}={string.Join(",", m["digest"]!.AsObject().Select(x => $"{x.Key}:{x.Value!.GetValue<string>()}"))}").ToArray();

    private static string? Signer(InTotoStatement s) => (s.Predicate["signer"] ?? s.Predicate["buildDefinition"]?["internalParameters"]?["signer"])?.GetValue<string>();

    [Test]
    public void Fetch_attests_the_tag_and_the_commit_it_read_and_a_failed_export_still_names_the_commit()
    {
        var step = new FetchStep(ExportLimits.Default);
        var passed = step.Attest(_c.Ctx, _c.Input, Result(_c.Fetched), At);
        var tag = $"{TagUri}=gitTag:{IntakeChain.TagId}";
        var commit = $"v1.0.0^{{commit}}=gitCommit:{IntakeChain.CommitId}";
        Assert.That(Names(passed.Subjects), Is.EqualTo(new[] { tag, commit }));
        Assert.That(Materials(passed), Is.Empty);
        Assert.That(Signer(passed), Is.Null, "nothing verified yet");

        Assert.That(Names(step.AttestFailure(_c.Ctx, _c.Input, Failure(), At).Subjects), Is.EqualTo(new[] { tag }), "failed before the tag was read");
        var afterRead = step.AttestFailure(_c.Ctx, _c.Input, Failure([StageAttestations.CommitDescriptor(_c.Ctx, _c.Fetched.Tag)]), At);
        Assert.That(Names(afterRead.Subjects), Is.EqualTo(new[] { tag, commit }), "the commit it had read");
        Assert.That(afterRead.Predicate["verdict"]!.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(afterRead.Predicate["reasonCode"]!.GetValue<string>(), Is.EqualTo("X-FAILED"));
    }

    [Test]
    public void Verify_attests_the_manifest_from_the_tag_and_commit_and_its_failure_carries_the_signer_it_had_matched()
    {
        var step = new VerifyStep();
        var passed = step.Attest(_c.Ctx, _c.Fetched, Result(_c.Verified), At);
        Assert.That(Names(passed.Subjects), Is.EqualTo(new[] { $"SHA256SUMS=sha256:{new string('0', 64)}" }));
        Assert.That(Materials(passed), Is.EqualTo(new[] { $"{TagUri}=gitTag:{IntakeChain.TagId}", $"v1.0.0^{{commit}}=gitCommit:{IntakeChain.CommitId}" }));
        Assert.That(Signer(passed), Is.EqualTo(IntakeChain.Signer));
        Assert.That(passed.PredicateType, Is.EqualTo(PredicateTypes.ForStage("verify")));

        var failed = step.AttestFailure(_c.Ctx, _c.Fetched, Failure(signer: "Key (Org)"), At);
        Assert.That(Names(failed.Subjects), Is.EqualTo(new[] { $"{TagUri}=gitTag:{IntakeChain.TagId}" }), "no manifest verified: the tag");
        Assert.That(Signer(failed), Is.EqualTo("Key (Org)"));
        Assert.That(failed.Predicate["evidence"]!["failedCheck"]!.GetValue<string>(), Is.EqualTo("X-FAILED"));
        var manifest = StageAttestations.ManifestDescriptor(_c.Ctx, _c.Verified.Checksums)!;
        Assert.That(Names(step.AttestFailure(_c.Ctx, _c.Fetched, Failure([manifest]), At).Subjects), Is.EqualTo(Names([manifest])), "a failure after the checksums verified names the manifest");
    }

    [Test]
    public void Scan_publish_build_and_push_link_to_the_scan_verdict_and_to_each_other()
    {
        var verdict = $"scan-verdict=sha256:{new string('5', 64)}";
        var scan = new ScanStep().Attest(_c.Ctx, new ScanInput(_c.Verified), Result(_c.Scanned), At);
        Assert.That((Names(scan.Subjects), Materials(scan)), Is.EqualTo((new[] { verdict }, new[] { $"SHA256SUMS=sha256:{new string('0', 64)}" })));
        Assert.That(Names(new ScanStep().AttestFailure(_c.Ctx, new ScanInput(_c.Verified), Failure(), At).Subjects), Is.EqualTo(new[] { $"{TagUri}=gitTag:{IntakeChain.TagId}" }),
            "a rejected scan has no verdict to attest");

        var publish = new PublishStep().Attest(_c.Ctx, _c.Scanned, Result(_c.Published), At);
        Assert.That(Names(publish.Subjects), Is.EqualTo(new[] { $"https://vcs-b.example/team/app.git#refs/tags/v1.0.0=gitTag:{IntakeChain.TagId}" }));
        Assert.That(Materials(publish), Is.EqualTo(new[] { $"{TagUri}=gitTag:{IntakeChain.TagId}", verdict }));
        Assert.That(Signer(publish), Is.EqualTo(IntakeChain.Signer), "later steps carry verify's signer from their input");

        var image = _c.Built.Images.Single().Image;
        var build = new BuildStep().Attest(_c.Ctx, new BuildInput(_c.Published), Result(_c.Built), At);
        Assert.That(build.PredicateType, Is.EqualTo(PredicateTypes.SlsaProvenance));
        Assert.That(Names(build.Subjects)[0], Is.EqualTo($"apps/demo/app:v1.0.0=sha256:{image.ManifestDigest.Hex}"));
        Assert.That(Names(build.Subjects).Skip(1), Is.EqualTo(image.NewLayers.Select(l => $"app/layer=sha256:{l.Descriptor.Digest.Hex}")));
        Assert.That(Materials(build), Is.EqualTo(new[]
        {
            $"base/os=sha256:{new string('3', 64)}", $"v1.0.0^{{commit}}=gitCommit:{IntakeChain.CommitId}", $"SHA256SUMS=sha256:{new string('0', 64)}", verdict,
        }));
        Assert.That(Materials(new BuildStep().AttestFailure(_c.Ctx, new BuildInput(_c.Published), Failure(), At)), Is.EqualTo(Materials(build)), "a failed build names what it built from");

        var push = new PushStep().Attest(_c.Ctx, new PushInput(_c.Built), Result(_c.Pushed), At);
        var reference = _c.Pushed.References.Single();
        Assert.That(Names(push.Subjects), Is.EqualTo(new[] { $"{reference}=sha256:{image.ManifestDigest.Hex}" }));
        Assert.That(Materials(push), Is.EqualTo(new[] { $"apps/demo/app:v1.0.0=sha256:{image.ManifestDigest.Hex}" }));
        var partial = ResourceDescriptor.Of(reference, "sha256", image.ManifestDigest.Hex);
        Assert.That(Names(new PushStep().AttestFailure(_c.Ctx, new PushInput(_c.Built), Failure([partial]), At).Subjects), Is.EqualTo(Names([partial])),
            "a push failing after one image names the image it pushed");
    }

    [Test]
    public void A_step_without_its_own_mapping_uses_the_generic_one()
    {
        var s = StageAttestations.ForOutcome(_c.Ctx, "smoke", null, new StageOutcome("sha256:" + new string('6', 64), $"r/a@sha256:{new string('7', 64)}", new Dictionary<string, string>()), At);
        Assert.That(Names(s.Subjects), Is.EqualTo(new[] { $"r/a@sha256:{new string('7', 64)}=sha256:{new string('7', 64)}" }));
        Assert.That(Materials(s), Is.EqualTo(new[] { $"=sha256:{new string('6', 64)}" }));
        Assert.That(s.Predicate["evidence"], Is.InstanceOf<JsonObject>());
    }
}
