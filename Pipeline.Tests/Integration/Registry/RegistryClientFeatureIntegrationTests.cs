using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pipeline.Registry;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// The registry client against real docker-registry processes: the shared plain one, and our own
/// throw-away ones with basic auth and with TLS + basic auth. Checked with skopeo.
/// </summary>
[Category("Integration")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class RegistryClientFeatureIntegrationTests
{
    private static readonly DateTimeOffset Pinned = new(2024, 6, 1, 8, 30, 0, TimeSpan.Zero);
    private ThrowAwayRegistry? _basic;
    private ThrowAwayRegistry? _tls;
    private string _work = "";
    private string _plain = "";

    [OneTimeSetUp]
    public void StartRegistries()
    {
        _plain = TestServices.Require("PIPELINE_REGISTRY");
        _basic = ThrowAwayRegistry.Start(auth: true, tls: false);
        _tls = ThrowAwayRegistry.Start(auth: true, tls: true);
    }

    [OneTimeTearDown]
    public void StopRegistries()
    {
        _basic?.Dispose();
        _tls?.Dispose();
    }

    [SetUp]
    public void Setup()
    {
        _work = Path.Combine(Path.GetTempPath(), "reg-feat-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_work);
    }

    [TearDown]
    public void Cleanup()
    {
        if (Directory.Exists(_work)) Directory.Delete(_work, true);
    }

    private static string Repo() => "pipeline-tests/feat-" + Guid.NewGuid().ToString("N")[..10];

    private async Task<(BuiltImage Image, BlobStore Store)> SampleAsync(string content = "hello", Platform? platform = null)
    {
        var src = Path.Combine(_work, "src-" + Guid.NewGuid().ToString("N")[..6]);
        await File.WriteAllTextAsync(src, content);
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var layer = await new LayerBuilder(store).BuildAsync([new LayerEntry(src, "/app/file", Convert.ToInt32("644", 8))], Pinned);
        return (ImageBuilder.Build(null, [layer], new ImageSettings { Created = Pinned, User = "1000", Platform = platform }), store);
    }

    private static string Skopeo(params string[] args)
    {
        var r = Shell.Run("skopeo", args);
        r.EnsureSuccess("skopeo " + string.Join(' ', args.Where(a => !a.Contains(ThrowAwayRegistry.Password))));
        return r.Stdout;
    }

    // ------------------------------------------------------------ basic auth

    [Test]
    public async Task Basic_auth_registry_accepts_a_push_with_credentials_from_a_file()
    {
        var repo = Repo();
        var (image, store) = await SampleAsync();
        using var client = new RegistryClient(new RegistryEndpoint(_basic!.BaseUri, RegistryCredentials.FromFile(_basic.CredentialsFile)));
        var pushed = await client.PushImageAsync(repo, "v1", image, store);
        Assert.That(pushed.ManifestDigest, Is.EqualTo(image.ManifestDigest));
        var raw = Skopeo("inspect", "--raw", "--tls-verify=false", "--creds", $"{ThrowAwayRegistry.User}:{ThrowAwayRegistry.Password}", $"docker://{_basic.Address}/{repo}:v1");
        Assert.That(Encoding.UTF8.GetBytes(raw.TrimEnd('\n')), Is.EqualTo(image.ManifestBytes));
        var anonymous = Shell.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", "--no-creds", $"docker://{_basic.Address}/{repo}:v1"]);
        Assert.That(anonymous.ExitCode, Is.Not.Zero, "the fixture really requires auth");
    }

    [Test]
    public async Task Wrong_password_is_an_auth_error_that_does_not_show_the_password()
    {
        using var client = new RegistryClient(new RegistryEndpoint(_basic!.BaseUri, new RegistryCredentials(ThrowAwayRegistry.User, "wrong-Passw0rd-xyz")));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-AUTH-001"));
        Assert.That(ex.StatusCode, Is.EqualTo(401));
        Assert.That(ex.Message, Does.Contain("check the registry credentials"));
        Assert.That(ex.ToString(), Does.Not.Contain("wrong-Passw0rd-xyz"));

        using var anonymous = new RegistryClient(new RegistryEndpoint(_basic.BaseUri));
        var anon = await Assert.ThrowsAsync<RegistryException>(() => anonymous.PingAsync());
        Assert.That(anon!.Code, Is.EqualTo("REG-AUTH-001"));
    }

    // ------------------------------------------------------------ TLS

    [Test]
    public async Task Tls_registry_is_trusted_through_the_operator_ca_bundle()
    {
        var repo = Repo();
        var (image, store) = await SampleAsync("over tls");
        using var client = new RegistryClient(new RegistryEndpoint(_tls!.BaseUri, RegistryCredentials.FromFile(_tls.CredentialsFile)),
            new RegistryClientOptions { CaBundleFile = _tls.CaFile });
        await client.PushImageAsync(repo, "v1", image, store);

        var certDir = Path.Combine(_work, "certs");
        Directory.CreateDirectory(certDir);
        File.Copy(_tls.CaFile!, Path.Combine(certDir, "ca.crt"));
        var raw = Skopeo("inspect", "--raw", "--tls-verify=true", "--cert-dir", certDir, "--creds", $"{ThrowAwayRegistry.User}:{ThrowAwayRegistry.Password}", $"docker://{_tls.Address}/{repo}:v1");
        Assert.That(Encoding.UTF8.GetBytes(raw.TrimEnd('\n')), Is.EqualTo(image.ManifestBytes), "skopeo verifying TLS with the same CA sees our manifest");
    }

    [Test]
    public async Task Tls_registry_without_the_ca_bundle_is_refused_as_untrusted_and_not_retried()
    {
        using var client = new RegistryClient(new RegistryEndpoint(_tls!.BaseUri, RegistryCredentials.FromFile(_tls.CredentialsFile)));
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PingAsync());
        Assert.That(ex!.Code, Is.EqualTo("REG-TLS-002"));
        Assert.That(ex.IsTransient, Is.False);
        Assert.That(ex.Message, Does.Contain("configure the registry CA bundle"));

        // A bundle with another CA is refused too.
        var other = Path.Combine(_work, "other");
        Directory.CreateDirectory(other);
        Shell.Run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
            "-keyout", Path.Combine(other, "k.pem"), "-out", Path.Combine(other, "c.pem")]).EnsureSuccess("openssl");
        using var wrongCa = new RegistryClient(new RegistryEndpoint(_tls.BaseUri), new RegistryClientOptions { CaBundleFile = Path.Combine(other, "c.pem") });
        var wrong = await Assert.ThrowsAsync<RegistryException>(() => wrongCa.PingAsync());
        Assert.That(wrong!.Code, Is.EqualTo("REG-TLS-002"));
    }

    // ------------------------------------------------------------ chunked upload and resume

    private sealed class FailingStream(Stream inner, long failAfter) : Stream
    {
        private long _read;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_read >= failAfter) throw new IOException("simulated disk failure");
            var n = inner.Read(buffer, offset, (int)Math.Min(count, failAfter - _read));
            _read += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }

    [Test]
    public async Task Interrupted_chunked_upload_resumes_where_the_registry_stopped()
    {
        var repo = Repo();
        var data = RandomNumberGenerator.GetBytes(1024 * 1024 + 123);
        var descriptor = new Descriptor(MediaTypes.OciLayerTar, Digest.Compute(data), data.Length);
        var options = new RegistryClientOptions { ChunkSize = 64 * 1024, ChunkedUploadThreshold = 0 };
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain), options);

        var ex = await Assert.ThrowsAsync<BlobUploadInterruptedException>(() =>
            client.PushBlobChunkedAsync(repo, descriptor, () => new FailingStream(new MemoryStream(data), 300 * 1024)));
        Assert.That(ex!.Code, Is.EqualTo("REG-BLOB-008"));
        Assert.That(ex.Offset, Is.EqualTo(256 * 1024), "four 64 KiB chunks were accepted before the source failed");
        Assert.That(ex.Message, Does.Contain("can be resumed"));
        Assert.That(await client.BlobExistsAsync(repo, descriptor.Digest), Is.False, "nothing was committed");

        var status = await client.GetUploadStatusAsync(ex.Location);
        Assert.That(status.Offset, Is.EqualTo(256 * 1024), "the registry confirms what it holds");

        using var second = new RegistryClient(RegistryEndpoint.Parse(_plain), options);
        Assert.That(await second.PushBlobChunkedAsync(repo, descriptor, () => new MemoryStream(data), ex.Location), Is.True);
        var back = new MemoryStream();
        await second.GetBlobAsync(repo, descriptor.Digest, back, descriptor.Size);
        Assert.That(back.ToArray(), Is.EqualTo(data));
    }

    [Test]
    public async Task Chunked_upload_refuses_local_content_that_does_not_match_before_committing()
    {
        var repo = Repo();
        var data = RandomNumberGenerator.GetBytes(200 * 1024);
        var claimed = new Descriptor(MediaTypes.OciLayerTar, Digest.Compute("something else"u8), data.Length);
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain), new RegistryClientOptions { ChunkSize = 64 * 1024 });
        var ex = await Assert.ThrowsAsync<RegistryException>(() => client.PushBlobChunkedAsync(repo, claimed, () => new MemoryStream(data)));
        Assert.That(ex!.Code, Is.EqualTo("REG-BLOB-001"));
        Assert.That(ex.Message, Does.Contain("Nothing was committed"));
        Assert.That(await client.BlobExistsAsync(repo, Digest.Compute(data)), Is.False);
    }

    [Test]
    public async Task Large_layers_go_up_in_chunks_through_push_image()
    {
        var repo = Repo();
        var src = Path.Combine(_work, "big");
        await File.WriteAllBytesAsync(src, RandomNumberGenerator.GetBytes(700 * 1024));
        var store = new BlobStore(Path.Combine(_work, "blobs"));
        var layer = await new LayerBuilder(store).BuildAsync([new LayerEntry(src, "/big", Convert.ToInt32("644", 8))], Pinned);
        var image = ImageBuilder.Build(null, [layer], new ImageSettings { Created = Pinned });
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain), new RegistryClientOptions { ChunkSize = 128 * 1024, ChunkedUploadThreshold = 256 * 1024 });
        var result = await client.PushImageAsync(repo, "v1", image, store);
        Assert.That(result.BlobsUploaded, Is.EqualTo(2));
        var layout = Path.Combine(_work, "layout");
        Skopeo("copy", "--src-tls-verify=false", $"docker://{_plain}/{repo}:v1", $"oci:{layout}:v1");
        var blob = Path.Combine(layout, "blobs", "sha256", layer.Descriptor.Digest.Hex);
        Assert.That(File.ReadAllBytes(blob), Is.EqualTo(File.ReadAllBytes(layer.BlobPath)), "skopeo fetched (and verified) the chunked blob");
    }

    [Test]
    public async Task Layer_streamed_while_building_equals_the_layer_built_then_pushed()
    {
        var repo = Repo();
        var src = Path.Combine(_work, "stream-src");
        Directory.CreateDirectory(src);
        for (var i = 0; i < 5; i++) await File.WriteAllBytesAsync(Path.Combine(src, $"f{i}"), RandomNumberGenerator.GetBytes(150 * 1024));
        var entries = Enumerable.Range(0, 5).Select(i => new LayerEntry(Path.Combine(src, $"f{i}"), $"/data/f{i}", Convert.ToInt32("644", 8))).ToList();
        var reference = await new LayerBuilder(new BlobStore(Path.Combine(_work, "ref"))).BuildAsync(entries, Pinned);
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain), new RegistryClientOptions { ChunkSize = 128 * 1024 });
        var store = new BlobStore(Path.Combine(_work, "streamed"));
        var layer = await client.BuildAndPushLayerAsync(repo, new LayerBuilder(store), entries, Pinned);
        Assert.That(layer.Descriptor, Is.EqualTo(reference.Descriptor));
        Assert.That(layer.DiffId, Is.EqualTo(reference.DiffId));
        Assert.That(await client.BlobExistsAsync(repo, layer.Descriptor.Digest), Is.True);
        var back = new MemoryStream();
        await client.GetBlobAsync(repo, layer.Descriptor.Digest, back, layer.Descriptor.Size);
        Assert.That(back.ToArray(), Is.EqualTo(File.ReadAllBytes(layer.BlobPath)));
        var image = ImageBuilder.Build(null, [layer], new ImageSettings { Created = Pinned });
        var push = await client.PushImageAsync(repo, "v1", image, store);
        Assert.That(push.BlobsSkipped, Is.EqualTo(1), "the streamed layer is already there");
    }

    // ------------------------------------------------------------ index and referrers

    [Test]
    public async Task Index_over_two_platform_images_is_what_skopeo_sees()
    {
        var repo = Repo();
        var (amd, store) = await SampleAsync("amd64", new Platform("amd64", "linux"));
        var (arm, _) = await SampleAsync("arm64", new Platform("arm64", "linux"));
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain));
        var index = new ImageIndex([
            new Descriptor(MediaTypes.OciManifest, amd.ManifestDigest, amd.ManifestBytes.Length, Platform: new Platform("amd64", "linux")),
            new Descriptor(MediaTypes.OciManifest, arm.ManifestDigest, arm.ManifestBytes.Length, Platform: new Platform("arm64", "linux")),
        ]);
        var missing = await Assert.ThrowsAsync<RegistryException>(() => client.PushIndexAsync(repo, "multi", index));
        Assert.That(missing!.Code, Is.EqualTo("REG-INDEX-002"));
        Assert.That(missing.Message, Does.Contain(amd.ManifestDigest.ToString()));

        await client.PushImageAsync(repo, amd.ManifestDigest.ToString(), amd, store);
        await client.PushImageAsync(repo, arm.ManifestDigest.ToString(), arm, store);
        var digest = await client.PushIndexAsync(repo, "multi", index);
        var raw = Skopeo("inspect", "--raw", "--tls-verify=false", $"docker://{_plain}/{repo}:multi");
        Assert.That(Digest.Compute(Encoding.UTF8.GetBytes(raw.TrimEnd('\n'))), Is.EqualTo(digest));
        using var inspect = JsonDocument.Parse(Skopeo("inspect", "--tls-verify=false", "--override-arch", "arm64", "--override-os", "linux", $"docker://{_plain}/{repo}:multi"));
        Assert.That(inspect.RootElement.GetProperty("Architecture").GetString(), Is.EqualTo("arm64"));
        Assert.That(inspect.RootElement.GetProperty("Layers")[0].GetString(), Is.EqualTo(arm.AllLayers[0].Digest.ToString()), "skopeo resolves the arm64 entry of our index");
    }

    [Test]
    public async Task Artifacts_attach_through_the_referrers_tag_fallback_and_are_listed()
    {
        var repo = Repo();
        var (image, store) = await SampleAsync("subject");
        using var client = new RegistryClient(RegistryEndpoint.Parse(_plain));
        await client.PushImageAsync(repo, "v1", image, store);

        var sbom = Encoding.UTF8.GetBytes("{\"spdxVersion\":\"SPDX-2.3\"}");
        var sbomDesc = new Descriptor("application/spdx+json", Digest.Compute(sbom), sbom.Length);
        var first = await client.AttachArtifactAsync(repo, image.ManifestDescriptor, "application/spdx+json", [(sbomDesc, sbom)]);
        Assert.That(first.UsedFallbackTag, Is.True, "docker-registry 2.8 has no referrers API");
        var again = await client.AttachArtifactAsync(repo, image.ManifestDescriptor, "application/spdx+json", [(sbomDesc, sbom)]);
        Assert.That(again.ManifestDigest, Is.EqualTo(first.ManifestDigest));
        var att = Encoding.UTF8.GetBytes("{\"_type\":\"https://in-toto.io/Statement/v1\"}");
        var attDesc = new Descriptor("application/vnd.in-toto+json", Digest.Compute(att), att.Length);
        await client.AttachArtifactAsync(repo, image.ManifestDescriptor, "application/vnd.in-toto+json", [(attDesc, att)]);

        var all = await client.ListReferrersAsync(repo, image.ManifestDigest);
        Assert.That(all.Select(d => d.ArtifactType), Is.EquivalentTo(new[] { "application/spdx+json", "application/vnd.in-toto+json" }), "no duplicate entry");
        var sboms = await client.ListReferrersAsync(repo, image.ManifestDigest, "application/spdx+json");
        Assert.That(sboms.Single().Digest, Is.EqualTo(first.ManifestDigest));

        var tag = RegistryClient.ReferrersTag(image.ManifestDigest);
        Assert.That(tag, Is.EqualTo("sha256-" + image.ManifestDigest.Hex));
        using var fallback = JsonDocument.Parse(Skopeo("inspect", "--raw", "--tls-verify=false", $"docker://{_plain}/{repo}:{tag}"));
        Assert.That(fallback.RootElement.GetProperty("mediaType").GetString(), Is.EqualTo(MediaTypes.OciIndex));
        Assert.That(fallback.RootElement.GetProperty("manifests").GetArrayLength(), Is.EqualTo(2));
        using var artifact = JsonDocument.Parse(Skopeo("inspect", "--raw", "--tls-verify=false", $"docker://{_plain}/{repo}@{first.ManifestDigest}"));
        Assert.That(artifact.RootElement.GetProperty("subject").GetProperty("digest").GetString(), Is.EqualTo(image.ManifestDigest.ToString()));
        Assert.That(artifact.RootElement.GetProperty("artifactType").GetString(), Is.EqualTo("application/spdx+json"));
        Assert.That(artifact.RootElement.GetProperty("config").GetProperty("mediaType").GetString(), Is.EqualTo(MediaTypes.OciEmpty));
    }
}
