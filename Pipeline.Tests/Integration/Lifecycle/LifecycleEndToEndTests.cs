using Pipeline.Engine.Approvals;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// A real delivery (git, clamd, registry, PostgreSQL) accepted by the intake goes automatically
/// into Vorprüfung, then by named people's Freigaben through Abnahme and Schulung into Produktion
/// (two approvers, one signed with her own SSH key, one entered on behalf); every bad input on the
/// way is refused with its code and cause; the Produktion image is the pushed digest and its trace
/// runs from the supplier's signature to the last Freigabe.
/// </summary>
public class LifecycleEndToEndTests : DeliveryFixture
{
    private static async Task<(int Rc, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Test]
    public async Task A_delivery_goes_to_Produktion_by_named_Freigaben_and_every_bad_input_is_refused()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var report = (await s.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(DeliveryStatus.Accepted), report.Reason);
        var pushed = report.Images.Single();
        var digest = pushed[(pushed.IndexOf('@') + 1)..];
        var id = report.DeliveryId;
        var reg = Harness.Registry;
        var repo = s.RegistryRepository;

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var (sam, anna, ben, carla, olga, otto) = (As(engine, "sam"), As(engine, "anna"), As(engine, "ben"), As(engine, "carla"), As(engine, "olga"), As(engine, "otto"));

        // The first stage is automatic: the acceptance put it into Vorprüfung.
        var d = await lc.GetAsync(sam, id, default);
        Assert.That((d.State, d.Stage), Is.EqualTo((LifecycleState.InStage, "Vorprüfung")));
        Assert.That(d.Images.Single().Reference, Is.EqualTo($"{reg}/vorpruefung/{repo}@{digest}"));
        Assert.That(SkopeoDigest($"{reg}/vorpruefung/{repo}:vorpruefung"), Is.EqualTo(digest), "the stage tag names the pushed digest");

        // Bad inputs around Abnahme.
        await AssertRefused(() => lc.RequestPromotionAsync(sam, id, "Schulung", default), "LC-STAGE-SKIPPED", "it must pass Abnahme before Schulung");
        await AssertRefused(() => lc.RequestPromotionAsync(sam, id, "Integration", default), "LC-UNKNOWN-STAGE", "this pipeline's stages are Vorprüfung ► Abnahme ► Schulung ► Produktion");
        await AssertRefused(() => lc.RequestPromotionAsync(otto, id, "Abnahme", default), "LC-PIPELINE-NOT-ALLOWED", $"Otto Other may not act on pipeline '{s.Name}'");
        await AssertRefused(() => lc.ApproveAsync(anna, new ApprovalInput(id, "Abnahme", null, null, null, null), default), "LC-NOT-AWAITING", "request one with 'pipeline promote'");
        await lc.RequestPromotionAsync(sam, id, "Abnahme", default);
        await AssertRefused(() => lc.RequestPromotionAsync(sam, id, "Abnahme", default), "LC-REQUEST-OPEN", "is already waiting for its Freigabe");
        await AssertRefused(() => lc.ApproveAsync(olga, new ApprovalInput(id, "Abnahme", null, null, null, null), default), "LC-WRONG-ROLE", "needs the role verfahrensverantwortlich; Olga Ops has betrieb");
        await AssertRefused(() => lc.ApproveAsync(otto, new ApprovalInput(id, "Abnahme", null, null, null, null), default), "LC-PIPELINE-NOT-ALLOWED", "Otto Other may not act on pipeline");
        await AssertRefused(() => lc.ApproveAsync(anna, new ApprovalInput(id, "Schulung", null, null, null, null), default), "LC-STAGE-SKIPPED", "it must pass Abnahme before Schulung");
        var wrong = "sha256:" + new string('0', 64);
        await AssertRefused(() => lc.ApproveAsync(anna, new ApprovalInput(id, "Abnahme", [wrong], null, null, null), default), "LC-DIGEST-MISMATCH", $"the Freigabe names {wrong}, but {s.Name} v1.0.0 in Vorprüfung is {digest}");
        await AssertRefused(() => lc.ApproveAsync(anna, new ApprovalInput(id, "Abnahme", null, null, "Nobody Known", null), default), "LC-UNKNOWN-PERSON", "'Nobody Known' is not in the people file");
        var input = new ApprovalInput(id, "Abnahme", [digest], "fachlich geprüft", null, null);
        var statement = await lc.ApprovalStatementAsync(anna, input, ApprovalDecision.Approve, default);
        var forged = LifecycleCommands.SshSign(statement.CanonicalBytes(), sc.MalloryKey.PrivateKeyPath);
        await AssertRefused(() => lc.ApproveAsync(anna, input with { Signature = new SignedApproval(statement.CanonicalBytes(), forged) }, default),
            "LC-SIGNATURE-INVALID", "is not Anna Beispiel's signature over this approval statement: CHK-SSH-005");
        var otherComment = LifecycleCommands.SshSign(statement.CanonicalBytes(), sc.AnnaKey.PrivateKeyPath);
        await AssertRefused(() => lc.ApproveAsync(anna, input with { Comment = "anders", Signature = new SignedApproval(statement.CanonicalBytes(), otherComment) }, default),
            "LC-STATEMENT-MISMATCH", "comment is 'fachlich geprüft', expected 'anders'");
        Assert.That((await lc.GetApprovalsAsync(sam, id, default)), Is.Empty, "no refused attempt was recorded as a Freigabe");

        var outcome = await lc.ApproveAsync(anna, input, default);
        Assert.That((outcome.RuleComplete, outcome.PromotionError, outcome.Delivery.State, outcome.Delivery.Stage), Is.EqualTo((true, (string?)null, LifecycleState.InStage, "Abnahme")));
        Assert.That(SkopeoDigest($"{reg}/abnahme/{repo}:abnahme"), Is.EqualTo(digest));

        // Schulung: the requester cannot approve; two approvers race, exactly one completes the rule.
        await lc.RequestPromotionAsync(anna, id, "Schulung", default);
        await AssertRefused(() => lc.ApproveAsync(anna, new ApprovalInput(id, "Schulung", null, null, null, null), default), "LC-OWN-REQUEST", "Anna Beispiel requested this promotion into Schulung and cannot approve it (four eyes)");
        var race = new[] { ben, carla }.Select(a => Task.Run(async () =>
        {
            try
            {
                return (Ok: (await lc.ApproveAsync(a, new ApprovalInput(id, "Schulung", null, null, null, null), default)).RuleComplete, Code: (string?)null);
            }
            catch (LifecycleException e)
            {
                return (Ok: false, Code: (string?)e.Code);
            }
        })).ToArray();
        var results = await Task.WhenAll(race);
        Assert.That(results.Count(r => r.Ok), Is.EqualTo(1), string.Join(", ", results));
        Assert.That(results.Single(r => !r.Ok).Code, Is.EqualTo("LC-NOT-AWAITING"));
        Assert.That((await lc.GetHistoryAsync(sam, id, default)).Count(h => h.Step == "promotion:Schulung"), Is.EqualTo(1), "promoted exactly once");

        // Produktion: two approvers; Anna signs with her own key through the CLI, Sam enters Carla's on her behalf.
        await lc.RequestPromotionAsync(sam, id, "Produktion", default);
        var (rc, output, err) = await Cli("approve", id.ToString(), "--stage", "Produktion", "--comment", "Produktion frei", "--sign-with", sc.AnnaKey.PrivateKeyPath,
            "--token-file", sc.TokenFile("anna"), "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("Freigabe into Produktion by Anna Beispiel, signed ssh SHA256:").And.Contain("1 more Freigabe(n) needed"));
        await AssertRefused(() => lc.ApproveAsync(anna, new ApprovalInput(id, "Produktion", null, null, null, null), default), "LC-ALREADY-APPROVED", "the same person counts once");
        var last = await lc.ApproveAsync(sam, new ApprovalInput(id, "Produktion", [digest], "telefonisch freigegeben", "Carla Conrad", null), default);
        Assert.That((last.Approval.Approver, last.Approval.EnteredBy, last.RuleComplete), Is.EqualTo(("Carla Conrad", "Sam Pfleger", true)));
        Assert.That((last.Delivery.State, last.Delivery.Stage), Is.EqualTo((LifecycleState.Final, "Produktion")));
        Assert.That(SkopeoDigest($"{reg}/produktion/{repo}:produktion"), Is.EqualTo(digest), "the digest in Produktion is the digest that was scanned, built and pushed");
        Assert.That(SkopeoDigest($"{reg}/produktion/{repo}:v1.0.0"), Is.EqualTo(digest), "the version tag too");
        await AssertRefused(() => lc.RequestPromotionAsync(sam, id, "Produktion", default), "LC-DELIVERY-CLOSED", "is final at Produktion");

        // The board and the trace.
        (rc, output, err) = await Cli("status", "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain($"pipeline {s.Name}: Vorprüfung [automatic] ► Abnahme").And.Contain("Produktion [2 × verfahrensverantwortlich, four eyes]").And.Contain("final"));
        var trace = await engine.Audit.TraceAsync(digest, default);
        Assert.That(trace.Ok, Is.True, $"checkpoint {trace.Checkpoint?.TreeSize}, deliveries {trace.Deliveries.Count}: " + string.Join("\n", trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems)));
        var steps = trace.Deliveries.Single().Steps.Select(x => x.Record).ToList();
        Assert.That(steps.Select(x => x.Stage), Is.EqualTo(new[]
        {
            "fetch", "verify", "scan", "publish", "build", "push",
            "request:Vorprüfung", "promotion:Vorprüfung",
            "request:Abnahme", "freigabe:Abnahme", "promotion:Abnahme",
            "request:Schulung", "freigabe:Schulung", "promotion:Schulung",
            "request:Produktion", "freigabe:Produktion", "freigabe:Produktion", "promotion:Produktion",
        }));
        Assert.That(steps.Where(x => x.Stage == "freigabe:Produktion").Select(x => x.Signer),
            Is.EqualTo(new[] { "Anna Beispiel, signed ssh " + Pipeline.Checkup.Signatures.Ssh.SshPublicKey.Parse(sc.AnnaKey.PublicKey).Fingerprint, "Carla Conrad (entered by Sam Pfleger)" }));
        Assert.That(steps.Where(x => x.Stage.StartsWith("promotion:", StringComparison.Ordinal)).Select(x => x.Subjects.First().Name),
            Is.EqualTo(new[] { "vorpruefung", "abnahme", "schulung", "produktion" }.Select(p => $"{reg}/{p}/{repo}@{digest}")));

        // Every promotion statement is a referrer of the image in its stage (the registry has no referrers
        // API: the sha256-<hex> fallback index), and the later copies carry the earlier ones on.
        var fallback = LifecycleScenario.Json(SkopeoRaw($"{reg}/produktion/{repo}:sha256-{digest["sha256:".Length..]}"))!;
        var dsse = fallback["manifests"]!.AsArray().Where(m => m!["artifactType"]?.GetValue<string>() == "application/vnd.dsse.envelope.v1+json").ToList();
        string StepOf(System.Text.Json.Nodes.JsonNode? m) => m!["annotations"]!["dev.pipeline.attestation.stage"]!.GetValue<string>();
        Assert.That(dsse.Select(StepOf).Where(x => x.StartsWith("promotion:", StringComparison.Ordinal)),
            Is.EquivalentTo(new[] { "promotion:Vorprüfung", "promotion:Abnahme", "promotion:Schulung", "promotion:Produktion" }));
        var referrer = dsse.Single(m => StepOf(m) == "promotion:Produktion")!;
        var referrerManifest = LifecycleScenario.Json(SkopeoRaw($"{reg}/produktion/{repo}@{referrer["digest"]!.GetValue<string>()}"))!;
        Assert.That(referrerManifest["subject"]!["digest"]!.GetValue<string>(), Is.EqualTo(digest), "the statement refers to the promoted image");
        var promotedLeaf = (await engine.Ledger.Log.GetLeafAsync(steps.Single(x => x.Stage == "promotion:Produktion").LogIndex, default))!;
        using (var http = new HttpClient())
        {
            var blob = await http.GetByteArrayAsync($"http://{reg}/v2/produktion/{repo}/blobs/{referrerManifest["layers"]![0]!["digest"]!.GetValue<string>()}");
            Assert.That(blob, Is.EqualTo(promotedLeaf.Envelope), "the attached envelope is the logged one, byte for byte");
        }

        // The human's own signature inside the engine's statement verifies offline.
        var signedLeaf = (await engine.Ledger.Log.GetLeafAsync(steps.First(x => x.Stage == "freigabe:Produktion").LogIndex, default))!;
        var check = FreigabeEvidence.Check(InTotoStatement.Parse(DsseEnvelope.Parse(signedLeaf.Envelope).Payload))!;
        Assert.That((check.Ok, check.Signed, check.Approver, check.Key), Is.EqualTo((true, true, "Anna Beispiel", "ssh " + Pipeline.Checkup.Signatures.Ssh.SshPublicKey.Parse(sc.AnnaKey.PublicKey).Fingerprint)), check.Problem);
        (rc, output, err) = await Cli("audit", "verify", "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err + output);
    }
}
