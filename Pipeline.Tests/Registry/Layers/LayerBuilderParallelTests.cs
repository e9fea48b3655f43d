using System.IO.Compression;
using System.Security.Cryptography;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Tests.Registry.Layers;

/// <summary>
/// The parallel gzip path: the layer's bytes, digest and diffID must not depend on how many
/// workers compress it, and the diffID hashed off the writer's thread must be the tar's sha256.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class LayerBuilderParallelTests
{
    private static readonly DateTimeOffset Pinned = new(2025, 2, 1, 0, 0, 0, TimeSpan.Zero);
    private string _dir = "";

    [SetUp]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "layer-par-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Cleanup()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    /// <summary>About 6.8 MB: random (stored) blocks, text (compressed) blocks, small files and an empty one, across block borders.</summary>
    private List<LayerEntry> Sample()
    {
        var src = Path.Combine(_dir, "src");
        Directory.CreateDirectory(src);
        var rng = new Random(7);
        var entries = new List<LayerEntry>();
        void Add(string name, byte[] content)
        {
            var path = Path.Combine(src, name);
            File.WriteAllBytes(path, content);
            entries.Add(new LayerEntry(path, "/opt/app/" + name, Convert.ToInt32("644", 8)));
        }
        var big = new byte[3 * ParallelGzipStream.BlockSize + 4321];
        rng.NextBytes(big);
        Add("big.bin", big);
        Add("text.txt", System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("delivery scan layer registry\n", 90_000))));
        for (var i = 0; i < 40; i++)
        {
            var small = new byte[rng.Next(1, 50_000)];
            rng.NextBytes(small);
            Add($"small-{i:D2}.so", small);
        }
        Add("empty", []);
        return entries;
    }

    private async Task<(Layer Layer, byte[] Blob)> BuildAsync(IReadOnlyList<LayerEntry> entries, int? workers, string storeName)
    {
        var store = new BlobStore(Path.Combine(_dir, storeName));
        var layer = await new LayerBuilder(store) { Workers = workers }.BuildAsync(entries, Pinned);
        return (layer, await File.ReadAllBytesAsync(layer.BlobPath));
    }

    [Test]
    public async Task One_worker_and_many_workers_give_the_same_bytes_digest_and_diffid()
    {
        var entries = Sample();
        var (one, oneBlob) = await BuildAsync(entries, 1, "w1");
        foreach (var workers in new[] { 2, 8 })
        {
            var (many, manyBlob) = await BuildAsync(entries, workers, $"w{workers}");
            Assert.That(many.Descriptor, Is.EqualTo(one.Descriptor), $"{workers} workers");
            Assert.That(many.DiffId, Is.EqualTo(one.DiffId), $"{workers} workers");
            Assert.That(manyBlob, Is.EqualTo(oneBlob), $"{workers} workers");
        }
        var (dflt, _) = await BuildAsync(entries, null, "default");
        Assert.That(dflt.Descriptor.Digest, Is.EqualTo(one.Descriptor.Digest), "processor-count workers");
    }

    [Test]
    public async Task Digest_and_diffid_are_the_sha256_of_the_blob_and_of_the_tar_inside_it()
    {
        var (layer, blob) = await BuildAsync(Sample(), 2, "s");
        Assert.That(layer.Descriptor.Digest, Is.EqualTo(Digest.Compute(blob)));
        Assert.That(layer.Descriptor.Size, Is.EqualTo(blob.LongLength));
        using var gunzip = new GZipStream(new MemoryStream(blob), CompressionMode.Decompress);
        using var tar = new MemoryStream();
        await gunzip.CopyToAsync(tar);
        Assert.That(layer.DiffId, Is.EqualTo(Digest.Compute(tar.ToArray())));
        Assert.That(tar.Length, Is.GreaterThan(6_000_000));
    }

    [Test]
    public void Input_hash_of_the_stream_is_the_sha256_of_everything_written()
    {
        var data = new byte[2 * ParallelGzipStream.BlockSize + 777];
        new Random(3).NextBytes(data);
        foreach (var (workers, writeSize) in new[] { (1, 4096), (4, 1_000_003) })
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using (var gz = new ParallelGzipStream(Stream.Null, 6, leaveOpen: true, workers, hash))
            {
                for (var off = 0; off < data.Length; off += writeSize) gz.Write(data, off, Math.Min(writeSize, data.Length - off));
                Assert.That(gz.InputCount, Is.EqualTo(data.Length));
            }
            Assert.That(hash.GetHashAndReset(), Is.EqualTo(SHA256.HashData(data)), $"{workers} workers, writes of {writeSize}");
        }
    }

    [Test]
    public async Task A_failing_output_stops_the_writer_with_the_error_instead_of_blocking()
    {
        var data = new byte[ParallelGzipStream.BlockSize];
        new Random(5).NextBytes(data);
        var run = Task.Run(async () =>
        {
            await using var gz = new ParallelGzipStream(new FailingStream(), 6, leaveOpen: true, workers: 1);
            // Far more blocks than may be in flight: unless the fault wakes the writer it waits for a slot forever.
            for (var i = 0; i < 64; i++) await gz.WriteAsync(data);
        });
        var first = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.That(first, Is.SameAs(run), "the writer is still blocked a minute after its output failed");
        var ex = await Assert.ThrowsAsync<IOException>(() => run);
        Assert.That(ex!.ToString(), Does.Contain("disk full (test)"));
    }

    private sealed class FailingStream : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get => 0; set { } }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("disk full (test)");
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromException(new IOException("disk full (test)"));
    }
}
