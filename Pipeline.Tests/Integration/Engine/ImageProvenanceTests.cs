using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// What the README promises about a pushed multi-platform delivery image, seen with skopeo and the
/// registry's referrers: every manifest and the index carry the OCI annotations (vendor, base.name with
/// the registry host, base.digest, ...), and the build provenance names the index it is attached to as
/// well as every platform's manifest.
/// </summary>
public class ImageProvenanceTests : DeliveryFixture
{
    [Test]
    public async Task A_multi_platform_image_carries_the_annotations_and_its_provenance_names_the_index()
    {
        var (baseRepo, baseDigest) = await PushTwoPlatformBaseAsync();
        var s = Harness.NewScenario();
        using var key = EngineSigningKey.Generate();
        key.WritePrivatePem(Path.Combine(s.Root, "engine-signing.pem"));
        File.AppendAllText(s.ConfigPath, "\nattestation:\n  signingKeyFile: engine-signing.pem\n");
        s.WriteDefinition(extraAllowedBase: $"{baseRepo}@{baseDigest}");
        foreach (var p in new[] { "linux-amd64", "linux-arm64" })
            s.Supplier.Write($"bin/{p}/app", $"#!/bin/sh\necho {p}\n");
        s.Supplier.Write("delivery.yaml", $$"""
            version: 1
            images:
              - name: app
                base: {{baseRepo}}@{{baseDigest}}
                platforms: [linux/amd64, linux/arm64]
                files:
                  - from: bin/{platform}
                    to: /opt/app
                entrypoint: [/opt/app/app]
                user: "10001:10001"
            """);
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.0");

        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), d.Reason);
        var image = d.Images.Single();
        var indexDigest = image[(image.IndexOf('@') + 1)..];

        var expected = new Dictionary<string, string>
        {
            ["org.opencontainers.image.vendor"] = "Test Supplier GmbH",
            ["org.opencontainers.image.base.name"] = $"{Harness.Registry}/{baseRepo}",
            ["org.opencontainers.image.base.digest"] = baseDigest,
            ["org.opencontainers.image.version"] = "v1.0.0",
        };
        var index = Raw($"{s.RegistryRepository}@{indexDigest}");
        Assert.That(index["mediaType"]!.GetValue<string>(), Is.EqualTo(MediaTypes.OciIndex));
        AssertAnnotations(index, expected, "index");
        var platformDigests = index["manifests"]!.AsArray().Select(m => m!["digest"]!.GetValue<string>()).ToList();
        Assert.That(platformDigests, Has.Count.EqualTo(2));
        foreach (var m in platformDigests)
        {
            var manifest = Raw($"{s.RegistryRepository}@{m}");
            AssertAnnotations(manifest, expected, "manifest " + m);
            Assert.That(manifest["annotations"]!["org.opencontainers.image.source"]!.GetValue<string>(), Does.EndWith($"e2e/{s.Name}.git"));
        }

        // The attestations hang on the index; the build provenance among them must name it, and each platform manifest.
        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + Harness.Registry)));
        var referrers = await client.ListReferrersAsync(s.RegistryRepository, Digest.Parse(indexDigest), DeliveryRunner.DsseArtifactType);
        var build = referrers.Single(r => r.Annotations![DeliveryRunner.StageAnnotation] == "build");
        var artifact = ImageManifest.Parse((await client.GetManifestAsync(s.RegistryRepository, build.Digest.ToString())).Bytes);
        using var blob = new MemoryStream();
        await client.GetBlobAsync(s.RegistryRepository, artifact.Layers.Single().Digest, blob);
        var statement = InTotoStatement.Parse(DsseEnvelope.Parse(blob.ToArray()).Payload);
        Assert.That(statement.PredicateType, Is.EqualTo(PredicateTypes.SlsaProvenance));
        var subjects = statement.Subjects.SelectMany(x => x.DigestStrings).ToList();
        Assert.That(subjects, Does.Contain(indexDigest), "the provenance names what it is attached to");
        Assert.That(subjects, Is.SupersetOf(platformDigests), "and every platform manifest");
        Assert.That(statement.Subjects.Single(x => x.DigestStrings.Contains(indexDigest)).Name, Is.EqualTo($"{s.RegistryRepository}:v1.0.0"));
    }

    private static void AssertAnnotations(JsonNode doc, Dictionary<string, string> expected, string what)
    {
        var annotations = doc["annotations"]?.AsObject() ?? throw new AssertionException($"{what} has no annotations: {doc.ToJsonString()}");
        foreach (var (k, v) in expected)
            Assert.That(annotations[k]?.GetValue<string>(), Is.EqualTo(v), $"{what}: {k}");
    }

    private JsonNode Raw(string reference)
    {
        var r = Shell.Run("skopeo", ["inspect", "--tls-verify=false", "--raw", $"docker://{Harness.Registry}/{reference}"]);
        r.EnsureSuccess("skopeo inspect --raw " + reference);
        return JsonNode.Parse(r.Stdout)!;
    }

    private async Task<(string Repository, string Digest)> PushTwoPlatformBaseAsync()
    {
        var dir = Harness.Dir.Combine("mp-base-" + Guid.NewGuid().ToString("N")[..8]);
        var store = new BlobStore(Path.Combine(dir, "blobs"));
        var descriptors = new List<Descriptor>();
        var repo = "pipeline-tests/mp-base-" + Guid.NewGuid().ToString("N")[..8];
        using var client = new RegistryClient(RegistryEndpoint.Parse(Harness.Registry));
        foreach (var arch in new[] { "amd64", "arm64" })
        {
            var root = Path.Combine(dir, arch, "etc");
            Directory.CreateDirectory(root);
            await File.WriteAllTextAsync(Path.Combine(root, "os-release"), $"ID={arch}\n");
            var img = await ScratchBaseBuilder.BuildAsync(Path.GetDirectoryName(root)!, store,
                new ImageSettings { Created = DateTimeOffset.UnixEpoch, Platform = new Platform(arch, "linux") }, DateTimeOffset.UnixEpoch);
            await client.PushImageAsync(repo, img.ManifestDigest.ToString(), img, store);
            descriptors.Add(new Descriptor(MediaTypes.OciManifest, img.ManifestDigest, img.ManifestBytes.Length, Platform: new Platform(arch, "linux")));
        }
        var digest = await client.PushIndexAsync(repo, "multi", new ImageIndex([.. descriptors]));
        return (repo, digest.ToString());
    }
}
