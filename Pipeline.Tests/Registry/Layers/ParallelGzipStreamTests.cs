using System.IO.Compression;
using System.Security.Cryptography;
using Pipeline.Registry.Layers;

namespace Pipeline.Tests.Registry.Layers;

public class ParallelGzipStreamTests
{
    private static byte[] Gzip(byte[] data, int writeSize, int workers)
    {
        using var output = new MemoryStream();
        using (var gz = new ParallelGzipStream(output, 6, leaveOpen: true, workers))
        {
            for (var off = 0; off < data.Length; off += writeSize) gz.Write(data, off, Math.Min(writeSize, data.Length - off));
        }
        return output.ToArray();
    }

    private static byte[] Gunzip(byte[] gz)
    {
        using var input = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    private static byte[] Mixed()
    {
        var random = new byte[3 * ParallelGzipStream.BlockSize + 12345];
        new Random(42).NextBytes(random);
        var text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("compressible text line\n", 100_000)));
        return [.. random, .. text];
    }

    [Test]
    public void Multi_member_output_decompresses_to_the_input()
    {
        var data = Mixed();
        var gz = Gzip(data, 70_000, 2);
        Assert.That(Gunzip(gz), Is.EqualTo(data));
        var members = 0;
        for (var i = 0; i + 3 < gz.Length; i++) if (gz[i] == 0x1f && gz[i + 1] == 0x8b && gz[i + 2] == 8 && gz[i + 9] == 3) members++;
        Assert.That(members, Is.GreaterThanOrEqualTo((data.Length + ParallelGzipStream.BlockSize - 1) / ParallelGzipStream.BlockSize));
    }

    [Test]
    public void Output_does_not_depend_on_write_sizes_or_worker_count()
    {
        var data = Mixed();
        var reference = Gzip(data, 1 << 20, 1);
        Assert.That(Gzip(data, 4096, 4), Is.EqualTo(reference));
        Assert.That(Gzip(data, 999_999, 2), Is.EqualTo(reference));
    }

    [Test]
    public void Incompressible_blocks_are_stored_and_text_is_compressed()
    {
        var random = RandomNumberGenerator.GetBytes(ParallelGzipStream.BlockSize);
        Assert.That(ParallelGzipStream.WorthCompressing(random, random.Length), Is.False);
        var gz = Gzip(random, 65536, 2);
        Assert.That(gz.Length, Is.LessThan(random.Length + 200), "stored, not expanded by a failed compression");
        var text = System.Text.Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("abc def ghi\n", 80_000)));
        Assert.That(ParallelGzipStream.WorthCompressing(text, text.Length), Is.True);
        Assert.That(Gzip(text, 65536, 2).Length, Is.LessThan(text.Length / 20));
    }

    [Test]
    public void Empty_input_is_one_valid_empty_member()
    {
        var gz = Gzip([], 1, 2);
        Assert.That(gz[0], Is.EqualTo(0x1f));
        Assert.That(Gunzip(gz), Is.Empty);
    }
}
