using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// After a delivery is accepted, every stage's signed envelope (exactly the bytes in the
/// transparency log) is attached to the pushed image as an OCI referrer, beside the SBOM.
/// </summary>
public class AttestationReferrersTests : DeliveryFixture
{
    [Test]
    public async Task Each_stage_envelope_is_a_referrer_of_the_pushed_image_with_the_logged_bytes()
    {
        var s = Harness.NewScenario();
        var keyFile = Path.Combine(s.Root, "engine-signing.pem");
        using var key = EngineSigningKey.Generate();
        key.WritePrivatePem(keyFile);
        File.AppendAllText(s.ConfigPath, "\nattestation:\n  signingKeyFile: engine-signing.pem\n");
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), d.Reason);
        var image = d.Images.Single();
        var digest = Digest.Parse(image[(image.IndexOf('@') + 1)..]);

        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + Harness.Registry)));
        var referrers = await client.ListReferrersAsync(s.RegistryRepository, digest, DeliveryRunner.DsseArtifactType);
        Assert.That(referrers.Select(r => r.Annotations![DeliveryRunner.StageAnnotation]).Order(),
            Is.EqualTo(new[] { "build", "fetch", "publish", "push", "scan", "verify" }), "one referrer per stage");
        var sbom = await client.ListReferrersAsync(s.RegistryRepository, digest, "application/spdx+json");
        Assert.That(sbom, Has.Count.EqualTo(1), "the SBOM referrer is still there");

        var keys = new KeyRing([key.Public]);
        await using var engine = await Pipeline.Engine.Hosting.PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        foreach (var r in referrers)
        {
            var manifest = ImageManifest.Parse((await client.GetManifestAsync(s.RegistryRepository, r.Digest.ToString())).Bytes);
            Assert.That(manifest.ArtifactType, Is.EqualTo(DeliveryRunner.DsseArtifactType));
            Assert.That(manifest.Subject!.Digest, Is.EqualTo(digest));
            using var blob = new MemoryStream();
            await client.GetBlobAsync(s.RegistryRepository, manifest.Layers.Single().Digest, blob);
            var index = long.Parse(r.Annotations![DeliveryRunner.LogIndexAnnotation], System.Globalization.CultureInfo.InvariantCulture);
            var leaf = (await engine.Ledger.Log.GetLeafAsync(index, default))!;
            Assert.That(blob.ToArray(), Is.EqualTo(leaf.Envelope), $"the {leaf.Stage} referrer is the logged envelope");
            var env = DsseEnvelope.Parse(blob.ToArray());
            Assert.That(env.Verify(keys).KeyId, Is.EqualTo(key.KeyId));
            if (leaf.Stage == "push")
                Assert.That(InTotoStatement.Parse(env.Payload).Subjects.SelectMany(x => x.DigestStrings), Does.Contain(digest.ToString()));
        }

        // skopeo (another client) sees an artifact manifest whose subject is the image.
        var raw = Shell.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", $"docker://{Harness.Registry}/{s.RegistryRepository}@{referrers[0].Digest}"]);
        raw.EnsureSuccess("skopeo inspect");
        var json = JsonNode.Parse(raw.Stdout)!;
        Assert.That(json["artifactType"]!.GetValue<string>(), Is.EqualTo("application/vnd.dsse.envelope.v1+json"));
        Assert.That(json["subject"]!["digest"]!.GetValue<string>(), Is.EqualTo(digest.ToString()));
    }
}
