using System.Text.RegularExpressions;
using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Attestations;

/// <summary>A delivery's facts and the typed output of every intake step, as a delivery that went through them all would have them.</summary>
public sealed record IntakeChain(DeliveryContext Ctx, FetchInput Input, Fetched Fetched, Verified Verified, Scanned Scanned, Published Published, Built Built, Pushed Pushed)
{
    public static readonly DateTimeOffset TagTime = new(2025, 3, 14, 15, 9, 26, TimeSpan.Zero);
    public const string TagId = "1111111111111111111111111111111111111111";
    public const string CommitId = "2222222222222222222222222222222222222222";
    public const string Signer = "Certified Release Key";


    public static async Task<IntakeChain> BuildAsync(TempDir _dir)
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
        var tag = new TagInfo("v1.0.0", TagId, true);
        var ctx = new DeliveryContext(Guid.CreateVersion7(), definition, settings, null!, tag, _dir.Combine("work", "d1"), TimeProvider.System);
        var fetched = new Fetched(new AnnotatedTag("v1.0.0", TagId, CommitId, "commit", "Supplier <release@supplier.example>", TagTime, "Release v1.0.0\n", CommitId, new string('4', 40)),
            ctx.TreeDir, 1, 1);
        var verified = new Verified(fetched, Signer, new ChecksumReport("sha256", "sha256:" + new string('0', 64), []),
            new DeliveryManifest(1, [new ImageSpec("app", baseRef, [], [], [], null, "10001:10001", new Dictionary<string, string>(), [], new Dictionary<string, string>())]));
        var scanned = new Scanned(verified, "sha256:" + new string('5', 64));
        var published = new Published(scanned, new Uri("https://vcs-b.example/team/app.git"));
        var built = new Built(published, [new BuiltDeliveryImage("app", "apps/demo/app", "v1.0.0", image, store)], []);
        var pushed = new Pushed(built, [$"127.0.0.1:5000/apps/demo/app@{image.ManifestDigest}"]);
        return new IntakeChain(ctx, new FetchInput(tag, null), fetched, verified, scanned, published, built, pushed);
    }
}
