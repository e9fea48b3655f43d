using System.Text;
using Pipeline.Registry;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Model;

public class ManifestTests
{
    private static readonly Digest A = Digest.Compute("a"u8);
    private static readonly Digest B = Digest.Compute("b"u8);

    private static ImageManifest Sample(IReadOnlyDictionary<string, string>? annotations = null) => new(
        new Descriptor(MediaTypes.OciConfig, A, 10),
        [new Descriptor(MediaTypes.OciLayerTarGzip, B, 20)],
        Annotations: annotations);

    [Test]
    public void Serialization_is_canonical_and_compact()
    {
        var json = Encoding.UTF8.GetString(Sample().ToJsonBytes());
        Assert.That(json, Is.EqualTo(
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," +
            $"\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"{A}\",\"size\":10}}," +
            $"\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"{B}\",\"size\":20}}]}}"));
    }

    [Test]
    public void Annotation_order_does_not_change_bytes()
    {
        var one = Sample(new Dictionary<string, string> { ["z"] = "1", ["a"] = "2" }).ToJsonBytes();
        var two = Sample(new Dictionary<string, string> { ["a"] = "2", ["z"] = "1" }).ToJsonBytes();
        Assert.That(one, Is.EqualTo(two));
        Assert.That(Encoding.UTF8.GetString(one), Does.EndWith("\"annotations\":{\"a\":\"2\",\"z\":\"1\"}}"));
    }

    [Test]
    public void Parse_roundtrips_to_identical_bytes()
    {
        var bytes = Sample(new Dictionary<string, string> { ["k"] = "v" }).ToJsonBytes();
        var parsed = ImageManifest.Parse(bytes);
        Assert.That(parsed.ToJsonBytes(), Is.EqualTo(bytes));
        Assert.That(parsed.Layers[0].Digest, Is.EqualTo(B));
    }

    private static string Doc(string body) => "{" + body + "}";
    private static string Desc(string mt, string digest, string size) => $"{{\"mediaType\":\"{mt}\",\"digest\":\"{digest}\",\"size\":{size}}}";

    [TestCase("\"schemaVersion\":1,\"config\":CFG,\"layers\":[]", "'schemaVersion' must be 2")]
    [TestCase("\"config\":CFG,\"layers\":[]", "'schemaVersion' is required")]
    [TestCase("\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"config\":CFG,\"layers\":[]", "not an image manifest type")]
    [TestCase("\"schemaVersion\":2,\"layers\":[]", "'config' is required")]
    [TestCase("\"schemaVersion\":2,\"config\":CFG", "'layers' is required")]
    [TestCase("\"schemaVersion\":2,\"config\":CFG,\"layers\":[NEG]", "'layers[0].size' must be >= 0")]
    [TestCase("\"schemaVersion\":2,\"config\":CFG,\"layers\":[BADDIGEST]", "'layers[0].digest' is invalid")]
    [TestCase("\"schemaVersion\":2,\"config\":CFG,\"layers\":[BADMT]", "not a valid media type")]
    [TestCase("\"schemaVersion\":2,\"schemaVersion\":2,\"config\":CFG,\"layers\":[]", "not valid JSON")]
    public void Parse_rejects_invalid(string body, string reason)
    {
        var json = Doc(body)
            .Replace("CFG", Desc(MediaTypes.OciConfig, A.ToString(), "1"))
            .Replace("NEG", Desc(MediaTypes.OciLayerTarGzip, B.ToString(), "-1"))
            .Replace("BADDIGEST", Desc(MediaTypes.OciLayerTarGzip, "sha256:XYZ", "1"))
            .Replace("BADMT", Desc("not a media type", B.ToString(), "1"));
        var ex = Assert.Throws<RegistryException>(() => ImageManifest.Parse(Encoding.UTF8.GetBytes(json)))!;
        Assert.That(ex.Code, Is.EqualTo("REG-MANIFEST-001"));
        Assert.That(ex.Message, Does.Contain(reason));
    }

    [Test]
    public void Index_roundtrips_with_platform()
    {
        var index = new ImageIndex([new Descriptor(MediaTypes.OciManifest, A, 5, Platform: new Platform("amd64", "linux"))]);
        var bytes = index.ToJsonBytes();
        Assert.That(Encoding.UTF8.GetString(bytes), Does.Contain("\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}"));
        Assert.That(ImageIndex.Parse(bytes).ToJsonBytes(), Is.EqualTo(bytes));
        var ex = Assert.Throws<RegistryException>(() => ImageIndex.Parse(Sample().ToJsonBytes()))!;
        Assert.That(ex.Code, Is.EqualTo("REG-INDEX-001"));
    }

    [Test]
    public void Descriptor_constructor_rejects_negative_size() =>
        Assert.That(Assert.Throws<RegistryException>(() => _ = new Descriptor(MediaTypes.OciConfig, A, -1))!.Message,
            Does.Contain("size must be >= 0"));
}
