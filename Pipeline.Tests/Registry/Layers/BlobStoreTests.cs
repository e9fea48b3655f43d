using Pipeline.Registry;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Layers;

public class BlobStoreTests
{
    private string _root = "";

    [SetUp]
    public void Setup() => _root = Path.Combine(Path.GetTempPath(), "blobs-" + Guid.NewGuid().ToString("N"));

    [TearDown]
    public void Cleanup() { if (Directory.Exists(_root)) Directory.Delete(_root, true); }

    [Test]
    public void Put_stores_under_content_address()
    {
        var store = new BlobStore(_root);
        var (digest, size, path) = store.Put(new MemoryStream("hello"u8.ToArray()));
        Assert.That(digest, Is.EqualTo(Digest.Compute("hello"u8)));
        Assert.That(size, Is.EqualTo(5));
        Assert.That(path, Is.EqualTo(Path.Combine(_root, "sha256", digest.Hex)));
        Assert.That(File.ReadAllText(path), Is.EqualTo("hello"));
        Assert.That(store.Contains(digest));
    }

    [Test]
    public void Put_with_wrong_expected_digest_stores_nothing()
    {
        var store = new BlobStore(_root);
        var wrong = Digest.Compute("other"u8);
        var ex = Assert.Throws<RegistryException>(() => store.Put(new MemoryStream("hello"u8.ToArray()), wrong))!;
        Assert.That(ex.Code, Is.EqualTo("REG-BLOB-001"));
        Assert.That(ex.Message, Does.Contain($"expected {wrong}, got {Digest.Compute("hello"u8)}"));
        Assert.That(Directory.GetFiles(_root, "*", SearchOption.AllDirectories), Is.Empty);
    }
}
