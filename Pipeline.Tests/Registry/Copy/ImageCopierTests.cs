using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Copy;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;
using Pipeline.Tests.Registry.Distribution;

namespace Pipeline.Tests.Registry.Copy;

/// <summary>
/// What the real registries in the integration tests cannot be made to do: a source that sends more
/// bytes than the manifest names (no Content-Length). Plus argument checks before any request.
/// </summary>
public class ImageCopierTests
{
    private static readonly byte[] Config = Encoding.UTF8.GetBytes("{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}");
    private static readonly byte[] Layer = Encoding.UTF8.GetBytes("layer bytes as named by the manifest");

    private static RegistryClient Client(string authority, FakeRegistryHandler handler) =>
        new(new RegistryEndpoint(new Uri($"http://{authority}/")), new RegistryClientOptions { MaxAttempts = 1 }, new HttpClient(handler));

    [Test]
    public async Task Invalid_parallelism_is_refused_before_any_request()
    {
        var handler = new FakeRegistryHandler(_ => new HttpResponseMessage(HttpStatusCode.InternalServerError));
        using var client = Client("127.0.0.1:1", handler);
        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.CopyAsync(client, "a/src", Digest.Compute(Layer), client, "a/dst",
            new ImageCopyOptions { Parallelism = 0 }, CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-006"));
        Assert.That(ex.Message, Does.Contain("Parallelism"));
        var tag = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.TagAsync(client, "a/dst", Digest.Compute(Layer), "bad tag", CancellationToken.None));
        Assert.That(tag!.Code, Is.EqualTo("REG-COPY-006"));
        Assert.That(handler.Requests, Is.Empty);
    }

    [Test]
    public async Task A_source_that_sends_more_bytes_than_the_descriptor_names_is_refused_and_nothing_is_committed()
    {
        var layerDesc = new Descriptor(MediaTypes.OciLayerTar, Digest.Compute(Layer), Layer.Length);
        var manifest = new ImageManifest(new Descriptor(MediaTypes.OciConfig, Digest.Compute(Config), Config.Length), [layerDesc]).ToJsonBytes();
        var manifestDigest = Digest.Compute(manifest);
        var source = new FakeRegistryHandler(request =>
        {
            var path = request.RequestUri!.AbsolutePath;
            if (path == $"/v2/a/src/manifests/{manifestDigest}")
            {
                var r = new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(manifest) };
                r.Content.Headers.ContentType = new MediaTypeHeaderValue(MediaTypes.OciManifest);
                return r;
            }
            if (path == $"/v2/a/src/blobs/{layerDesc.Digest}")
                return new HttpResponseMessage(HttpStatusCode.OK) { Content = new UnknownLengthContent([.. Layer, .. "and a tail"u8.ToArray()]) };
            if (path == $"/v2/a/src/blobs/{Digest.Compute(Config)}")
                return new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(Config) };
            return new HttpResponseMessage(HttpStatusCode.NotFound);
        });
        var target = new FakeRegistryHandler(request =>
        {
            if (request.Method == HttpMethod.Post)
            {
                var r = new HttpResponseMessage(HttpStatusCode.Accepted);
                r.Headers.Location = new Uri($"/v2/a/dst/blobs/uploads/{Guid.NewGuid():N}", UriKind.Relative);
                return r;
            }
            if (request.Method == HttpMethod.Patch) return new HttpResponseMessage(HttpStatusCode.Accepted);
            if (request.Method == HttpMethod.Delete) return new HttpResponseMessage(HttpStatusCode.NoContent);
            if (request.Method == HttpMethod.Put) return new HttpResponseMessage(HttpStatusCode.Created) { Headers = { Location = new Uri("/v2/a/dst/blobs/x", UriKind.Relative) } };
            return new HttpResponseMessage(HttpStatusCode.NotFound);
        });
        using var sourceClient = Client("127.0.0.1:1", source);
        using var targetClient = Client("127.0.0.1:2", target);

        var ex = await Assert.ThrowsAsync<RegistryException>(() => ImageCopier.CopyAsync(sourceClient, "a/src", manifestDigest, targetClient, "a/dst",
            new ImageCopyOptions { Parallelism = 1, IncludeReferrers = false }, CancellationToken.None));

        Assert.That(ex!.Code, Is.EqualTo("REG-COPY-001"), ex.Message);
        Assert.That(ex.IsTransient, Is.False);
        Assert.That(ex.Message, Does.Contain(layerDesc.Digest.ToString()).And.Contain("more than"));
        Assert.That(target.Requests.Where(r => r.Method == HttpMethod.Put).Select(r => r.Uri.Query), Has.None.Contains(layerDesc.Digest.Hex),
            "the over-long layer's upload session is never committed");
        Assert.That(target.Requests.Any(r => r.Method == HttpMethod.Put && r.Uri.AbsolutePath.Contains("/manifests/")), Is.False, "no manifest pushed");
        Assert.That(target.Requests.Any(r => r.Method == HttpMethod.Delete), Is.True, "the abandoned session is cancelled");
    }

    /// <summary>A body without Content-Length (chunked transfer), as a hostile source could send.</summary>
    private sealed class UnknownLengthContent(byte[] bytes) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
