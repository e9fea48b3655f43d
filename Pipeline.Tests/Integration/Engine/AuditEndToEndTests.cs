using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// Real deliveries (git, clamd, registry, PostgreSQL) followed by the auditor's tools: trace the
/// pushed image through every signed stage, verify the whole log, export a bundle, and verify the
/// bundle with no database and no engine configuration.
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class AuditEndToEndTests
{
    private DeliveryHarness _harness = null!;

    [OneTimeSetUp]
    public async Task SetUp() => _harness = await DeliveryHarness.CreateAsync();

    [OneTimeTearDown]
    public async Task TearDown()
    {
        if (_harness is not null) await _harness.DisposeAsync();
    }

    /// <summary>A scenario whose engine.yaml names a signing key and a checkpoint folder.</summary>
    private (Scenario S, string PublicKey, string CheckpointDir) NewScenario()
    {
        var s = _harness.NewScenario();
        var keyFile = Path.Combine(s.Root, "engine-signing.pem");
        using (var key = EngineSigningKey.Generate())
        {
            key.WritePrivatePem(keyFile);
            File.WriteAllText(Path.Combine(s.Root, "engine.pub.pem"), key.Public.PublicKeyPem + "\n");
        }

        File.AppendAllText(s.ConfigPath, "\nattestation:\n  signingKeyFile: engine-signing.pem\nledger:\n  checkpointDir: checkpoints\n  origin: e2e.example/ledger\n");
        return (s, Path.Combine(s.Root, "engine.pub.pem"), Path.Combine(s.Root, "checkpoints"));
    }

    private static async Task<(int Rc, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    [Test]
    public async Task A_delivered_image_traces_through_every_signed_stage_and_its_bundle_verifies_offline()
    {
        var (s, pub, checkpoints) = NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var commit = Shell.Git(s.Supplier.WorkTree, "rev-parse", "v1.0.0^{commit}").Stdout.Trim();
        var tagId = Shell.Git(s.Supplier.WorkTree, "rev-parse", "v1.0.0").Stdout.Trim();

        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), d.Reason);
        Assert.That(d.Entries.Select(e => e.LogIndex), Is.All.Not.Null, "every stage is attested in the log");
        var image = d.Images.Single();
        var digest = image[(image.IndexOf('@') + 1)..];
        Assert.That(File.ReadAllText(Path.Combine(checkpoints, "latest.note")), Does.StartWith("e2e.example/ledger\n6\n"), "a checkpoint is signed after the delivery");

        await using (var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default))
        {
            var trace = await engine.Audit.TraceAsync(image, default);
            Assert.That(trace.Ok, Is.True, string.Join("\n", trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems)));
            var steps = trace.Deliveries.Single().Steps;
            Assert.That(steps.Select(x => (x.Record.Stage, x.Record.Verdict)), Is.EqualTo(new[]
            {
                ("fetch", "passed"), ("verify", "passed"), ("scan", "passed"), ("publish", "passed"), ("build", "passed"), ("push", "passed"),
            }));
            Assert.That(steps.All(x => x.SignatureValid && x.IncludedInCheckpoint && x.UnlinkedMaterials.Count == 0));
            Assert.That(steps[0].Record.Subjects.SelectMany(x => x.DigestStrings), Is.EquivalentTo(new[] { "gitTag:" + tagId, "gitCommit:" + commit }));
            Assert.That(steps[1].Record.Signer, Is.EqualTo("Certified Release Key (Test Supplier GmbH)"));
            Assert.That(steps[1].Record.PolicyDigest, Does.StartWith("sha256:"));
            Assert.That(steps[4].Record.PredicateType, Is.EqualTo("https://slsa.dev/provenance/v1"));
            Assert.That(steps[4].Record.Subjects.SelectMany(x => x.DigestStrings), Does.Contain(digest));
            Assert.That(steps[4].Record.Materials.SelectMany(x => x.DigestStrings), Does.Contain("gitCommit:" + commit).And.Contain("sha256:" + _harness.BaseImage.Split("@sha256:")[1]));
            Assert.That(steps[5].Record.Subjects.Single().Name, Is.EqualTo(image));
            Assert.That(steps.Select(x => x.Record.PredicateType).Where(t => t != "https://slsa.dev/provenance/v1"),
                Is.EqualTo(new[] { "fetch", "verify", "scan", "publish", "push" }.Select(x => $"https://pipeline.example/attestations/{x}/v1")));

            // The build statement is a SLSA Provenance v1 with our build type and builder.
            var leaf = (await engine.Ledger.Log.GetLeafAsync(steps[4].Record.LogIndex, default))!;
            var statement = JsonNode.Parse(Pipeline.Engine.Attestations.DsseEnvelope.Parse(leaf.Envelope).Payload)!;
            Assert.That(statement["_type"]!.GetValue<string>(), Is.EqualTo("https://in-toto.io/Statement/v1"));
            Assert.That(statement["predicate"]!["buildDefinition"]!["buildType"]!.GetValue<string>(), Is.EqualTo("https://pipeline.example/buildtypes/delivery-image/v1"));
            Assert.That(statement["predicate"]!["buildDefinition"]!["externalParameters"]!["tag"]!.GetValue<string>(), Is.EqualTo("v1.0.0"));
            Assert.That(statement["predicate"]!["runDetails"]!["builder"]!["id"]!.GetValue<string>(), Is.EqualTo("https://pipeline.example/engine/v1"));
        }

        var (rc, output, err) = await Cli("audit", "trace", digest, "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("CHAIN VERIFIED").And.Contain("signer Certified Release Key"));
        (rc, output, err) = await Cli("audit", "verify", "--config", s.ConfigPath, "--since-checkpoint", Path.Combine(checkpoints, "checkpoint-000000000006.note"));
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("log verified: OK").And.Contain("consistent with the checkpoint at size 6 from"));

        var bundle = Path.Combine(s.Root, "bundle.json");
        (rc, _, err) = await Cli("audit", "export", image, "-o", bundle, "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);

        // Offline: no --config, no database.
        (rc, output, err) = await Cli("audit", "verify-bundle", bundle, "--key", pub, "--origin", "e2e.example/ledger");
        Assert.That(rc, Is.EqualTo(0), err + output);
        Assert.That(output, Does.Contain("bundle verified: OK").And.Contain("subject: " + digest));

        // A key the auditor does not trust.
        using (var other = EngineSigningKey.Generate())
        {
            var otherPub = Path.Combine(s.Root, "other.pub.pem");
            File.WriteAllText(otherPub, other.Public.PublicKeyPem);
            (rc, _, err) = await Cli("audit", "verify-bundle", bundle, "--key", otherPub);
            Assert.That(rc, Is.EqualTo(1));
            Assert.That(err, Does.Contain("LOG-CHECKPOINT-KEY-UNKNOWN").And.Contain("ATT-KEY-UNKNOWN"));
        }

        // A bundle whose push statement was edited (verdict and subject) no longer verifies.
        var json = JsonNode.Parse(File.ReadAllBytes(bundle))!;
        var entry = json["entries"]!.AsArray()[^1]!;
        var env = Pipeline.Engine.Attestations.DsseEnvelope.Parse(Convert.FromBase64String(entry["envelope"]!.GetValue<string>()));
        var edited = env with { Payload = Encoding.UTF8.GetBytes(env.PayloadText.Replace(digest[7..], new string('0', 64))) };
        entry["envelope"] = Convert.ToBase64String(edited.CanonicalBytes());
        File.WriteAllText(bundle, json.ToJsonString());
        (rc, _, err) = await Cli("audit", "verify-bundle", bundle, "--key", pub);
        Assert.That(rc, Is.EqualTo(1));
        Assert.That(err, Does.Contain($"ATT-SIGNATURE-INVALID: entry {d.Entries[^1].LogIndex}: the envelope signature"));
    }

    [Test]
    public async Task A_rejected_delivery_is_attested_too_and_traced_by_tag_with_its_reason()
    {
        var (s, _, _) = NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v2.0.0", SupplierRepo.NewKey(s.Root, "stranger"));
        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, "CHK-SSH-005")));

        var (rc, output, err) = await Cli("audit", "trace", "v2.0.0", "--json", "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        var steps = JsonNode.Parse(output)!["deliveries"]![0]!["steps"]!.AsArray();
        Assert.That(steps.Select(x => x!["record"]!["stage"]!.GetValue<string>()), Is.EqualTo(new[] { "fetch", "verify" }));
        Assert.That(steps[1]!["record"]!["verdict"]!.GetValue<string>(), Is.EqualTo("failed"));
        Assert.That(steps[1]!["record"]!["reasonCode"]!.GetValue<string>(), Is.EqualTo("CHK-SSH-005"));

        (rc, output, _) = await Cli("audit", "query", "--verdict", "failed", "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0));
        Assert.That(output, Does.Contain("verify   failed CHK-SSH-005").And.Contain("1 entry"));
    }

    [Test]
    public async Task A_failed_stage_signs_its_evidence_and_no_statement_names_a_local_path()
    {
        var (s, _, _) = NewScenario();
        s.WriteDefinition();
        // Signed by the certified key, checksums right, but delivery.yaml names a base image that is not allowed.
        s.WriteGoodDelivery(baseImage: "evil.example/base@sha256:" + new string('0', 64));
        s.Publish("v3.0.0");
        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That((d.Status, d.Entries[^1].Record.Stage), Is.EqualTo((DeliveryStatus.Rejected, "verify")), d.Reason);

        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var leaf = (await engine.Ledger.Log.GetLeafAsync(d.Entries[^1].LogIndex!.Value, default))!;
        var predicate = JsonNode.Parse(Pipeline.Engine.Attestations.DsseEnvelope.Parse(leaf.Envelope).Payload)!["predicate"]!;
        Assert.That(predicate["verdict"]!.GetValue<string>(), Is.EqualTo("failed"));
        var evidence = predicate["evidence"]!;
        Assert.That(evidence["failedCheck"]!.GetValue<string>(), Is.EqualTo(d.ReasonCode));
        Assert.That(evidence["signer"]!.GetValue<string>(), Is.EqualTo("Certified Release Key"));
        Assert.That(evidence["signerKey"]!.GetValue<string>(), Is.Not.Empty);
        Assert.That(evidence["manifestDigest"]!.GetValue<string>(), Does.StartWith("sha256:"));
        Assert.That(predicate["signer"]!.GetValue<string>(), Is.EqualTo("Certified Release Key (Test Supplier GmbH)"));

        // Nothing signed names the engine's folders (work folder, temp folder, the scenario's root).
        foreach (var l in await engine.Ledger.Log.LeavesAsync(-1, 1000, default))
        {
            var text = Pipeline.Engine.Attestations.DsseEnvelope.Parse(l.Envelope).PayloadText;
            Assert.That(text, Does.Not.Contain(s.Root).And.Not.Contain(Path.GetTempPath()).And.Not.Contain(engine.Settings.WorkDir), $"log entry {l.Index} ({l.Stage})");
        }
    }
}
