using System.Net;
using System.Text.RegularExpressions;
using Pipeline.Checkup.Checksums;
using Pipeline.Engine;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The image work a delivery does ahead of its steps (issue 12), against the real registry: the
/// images are built while the scan runs, but not one blob reaches the registry before the verdict;
/// after it, the blobs go up and still nothing names them (no manifest, no tag) until the push step.
/// </summary>
[Category("Integration")]
public class ImageAheadTests
{
    private static readonly DateTimeOffset TagTime = new(2025, 3, 14, 15, 9, 26, TimeSpan.Zero);
    private readonly TempDir _dir = new("image-ahead");
    private string _registry = "";
    private string _prefix = "";
    private string _base = "";

    [OneTimeSetUp]
    public async Task PushBase()
    {
        _registry = TestServices.Require("PIPELINE_REGISTRY");
        _prefix = "pipeline-tests/ahead-" + Guid.NewGuid().ToString("N")[..8];
        var rootfs = Directory.CreateDirectory(_dir.Combine("rootfs", "etc")).Parent!.FullName;
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "os-release"), "ID=ahead\n");
        var store = new BlobStore(_dir.Combine("base-blobs"));
        var image = await ScratchBaseBuilder.BuildAsync(rootfs, store, new ImageSettings { Created = TagTime }, TagTime);
        using var client = new RegistryClient(RegistryEndpoint.Parse(_registry));
        await client.PushImageAsync(_prefix + "/base", image.ManifestDigest.ToString(), image, store);
        _base = $"{_prefix}/base@{image.ManifestDigest}";
    }

    [OneTimeTearDown]
    public void Clean() => _dir.Dispose();

    [Test]
    public async Task Images_are_built_before_the_verdict_but_no_blob_leaves_until_it_is_final()
    {
        var (ctx, verified) = Delivery("d1");
        await using var ahead = ImageAhead.Start(ctx, verified, CancellationToken.None);
        var build = (await ahead.BuildsAsync(verified, CancellationToken.None)).Single();
        var image = build.Platforms.Single().Image;
        var layers = image.NewLayers.Select(l => l.Descriptor.Digest).ToList();
        Assert.That(layers.Select(new BlobStore(ctx.Settings.WorkDir + "/blobs").Contains), Has.All.True, "the layers are built on this machine");
        var delivered = layers.Append(image.ConfigDigest).ToList();
        Assert.That(await Present(build.Repository, delivered), Has.All.False, "before the verdict not one blob is in the registry");

        var built = new BuiltDeliveryImage("app", build.Repository, "v1.0.0", image, ctx.Settings.WorkDir + "/blobs") { BaseRepository = build.BaseRepository };
        var early = (await Assert.ThrowsAsync<PipelineException>(() => ahead.BlobsAsync(built, CancellationToken.None)))!;
        Assert.That((early.Code, early.Message), Is.EqualTo(("ENG-STAGE-ORDER", "push needs the scan's verdict before any blob is uploaded")));
        var (_, other) = Delivery("d2");
        var wrong = Assert.Throws<PipelineException>(() => ahead.StartUpload(new Scanned(other, "sha256:" + new string('5', 64))))!;
        Assert.That((wrong.Code, wrong.Message), Is.EqualTo(("ENG-STAGE-ORDER", "the scan verdict is not about the delivery built ahead")));
        Assert.That(await Present(build.Repository, delivered), Has.All.False, "a verdict about another delivery uploads nothing");

        ahead.StartUpload(new Scanned(verified, "sha256:" + new string('5', 64)));
        var counts = await ahead.BlobsAsync(built, CancellationToken.None);
        Assert.That((counts.Uploaded, counts.Mounted), Is.EqualTo((delivered.Count, 1)), "the delivery's layers and config uploaded, the base layer mounted");
        Assert.That(await Present(build.Repository, delivered), Has.All.True, "after the verdict the blobs are there");
        using var client = new RegistryClient(RegistryEndpoint.Parse(_registry));
        var named = (await Assert.ThrowsAsync<Pipeline.Registry.RegistryException>(() => client.GetManifestAsync(build.Repository, "v1.0.0")))!;
        Assert.That(named.StatusCode, Is.EqualTo(404), "no manifest, no tag: that is the push step's");
    }

    private (DeliveryContext, Verified) Delivery(string name)
    {
        var work = _dir.Combine(name);
        var pipelines = Directory.CreateDirectory(Path.Combine(work, "pipelines")).FullName;
        var settings = new EngineSettings(Path.Combine(work, "engine.yaml"), pipelines, Path.Combine(work, "work"), new DatabaseSettings("Host=unused", null),
            new ClamdSettings(["tcp://127.0.0.1:1"], 1, TimeSpan.FromMinutes(1), Pipeline.Checkup.Scanning.ClamdLimits.Defaults),
            new RegistrySettings(new Uri("http://" + _registry), null), new InternalGitSettings(new Uri("http://127.0.0.1:1"), null));
        var definition = new PipelineDefinition("demo", Path.Combine(pipelines, "demo.yaml"), "Supplier GmbH", null,
            new SourceSettings(new Uri("https://vcs-a.example/supplier/app.git"), null, new Regex(".")),
            [], new ChecksumSettings("SHA256SUMS", ManifestSignature.Tag, null), new PublishSettings("team/app"), new ImageTargetSettings(_prefix + "/apps", [_base]));
        var tag = new TagInfo("v1.0.0", new string('1', 40), true);
        var ctx = new DeliveryContext(Guid.CreateVersion7(), definition, settings, null!, tag, Path.Combine(work, "work", "d"), TimeProvider.System);
        Directory.CreateDirectory(Path.Combine(ctx.TreeDir, "bin"));
        File.WriteAllText(Path.Combine(ctx.TreeDir, "bin", "app"), $"#!/bin/sh\necho {name}\n");
        File.WriteAllText(Path.Combine(ctx.TreeDir, DeliveryManifest.FileName), $"""
            version: 1
            images:
              - name: app
                base: {_base}
                files:
                  - from: bin
                    to: /opt/app
                    mode: "0755"
                entrypoint: [/opt/app/app]
                user: "10001:10001"
            """);
        var manifest = DeliveryManifestParser.Load(ctx.TreeDir, [_base]);
        var fetched = new Fetched(new AnnotatedTag("v1.0.0", tag.ObjectId, new string('2', 40), "commit", "Supplier <r@s.example>", TagTime, "v1.0.0\n", new string('2', 40), new string('4', 40)),
            ctx.TreeDir, 2, 100);
        return (ctx, new Verified(fetched, "Release Key", new ChecksumReport("sha256", "sha256:" + new string('0', 64), []), manifest));
    }

    private async Task<List<bool>> Present(string repository, IEnumerable<Digest> digests)
    {
        using var http = new HttpClient();
        var result = new List<bool>();
        foreach (var d in digests)
        {
            using var r = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"http://{_registry}/v2/{repository}/blobs/{d}"));
            result.Add(r.StatusCode == HttpStatusCode.OK);
        }

        return result;
    }
}
