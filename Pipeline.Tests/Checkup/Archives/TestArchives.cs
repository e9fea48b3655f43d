using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Archives;

/// <summary>Builds test archives in memory (nothing checked in): zip, tar, tar.gz, and bzip2/xz/7z via their CLIs.</summary>
internal static class TestArchives
{
    // Built from two halves so no source file holds the test string in one piece.
    public static readonly byte[] Eicar = Encoding.ASCII.GetBytes(@"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*");

    /// <summary><paramref name="size"/> bytes: zeros, ending with the EICAR string.</summary>
    public static byte[] ZerosEndingInEicar(long size)
    {
        var b = new byte[size];
        Eicar.CopyTo(b, size - Eicar.Length);
        return b;
    }

    /// <summary>
    /// <paramref name="size"/> bytes ending with EICAR that compress only about thirtyfold (2 KiB of noise per 64 KiB),
    /// so a zip of them stays under any sane compression-ratio limit: only clamd's size limits are at stake.
    /// </summary>
    public static byte[] NoisyEndingInEicar(long size)
    {
        var b = new byte[size];
        var rng = new Random(42);
        for (long at = 0; at + 2048 < size; at += 64 * 1024) rng.NextBytes(b.AsSpan((int)at, 2048));
        Eicar.CopyTo(b, size - Eicar.Length);
        return b;
    }

    public static byte[] Zip(params (string Name, byte[] Content)[] entries)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.Optimal).Open();
                s.Write(content);
            }
        }
        return ms.ToArray();
    }

    public static byte[] Tar(params (string Name, byte[] Content)[] entries)
    {
        var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content) in entries)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
        }
        return ms.ToArray();
    }

    public static byte[] Gzip(byte[] content)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(content);
        return ms.ToArray();
    }

    public static byte[] TarGz(params (string Name, byte[] Content)[] entries) => Gzip(Tar(entries));

    /// <summary>Compresses with a CLI (<c>bzip2</c> → .bz2, <c>xz</c> → .xz) in a temporary folder.</summary>
    public static byte[] Cli(string tool, byte[] content)
    {
        using var dir = new TempDir("pipeline-cli-");
        var file = dir.Combine("data");
        File.WriteAllBytes(file, content);
        Shell.Run(tool, ["-z", file], dir.Path).EnsureSuccess(tool);
        return File.ReadAllBytes(file + (tool == "bzip2" ? ".bz2" : ".xz"));
    }

    /// <summary>A 7z archive of the given files, made by the <c>7z</c> CLI in a temporary folder.</summary>
    public static byte[] SevenZip(params (string Name, byte[] Content)[] entries)
    {
        using var dir = new TempDir("pipeline-7z-");
        var src = dir.Combine("src");
        Directory.CreateDirectory(src);
        foreach (var (name, content) in entries) File.WriteAllBytes(Path.Combine(src, name), content);
        var archive = dir.Combine("a.7z");
        Shell.Run("7z", ["a", "-bd", "-y", archive, .. entries.Select(e => e.Name)], src).EnsureSuccess("7z");
        return File.ReadAllBytes(archive);
    }

    /// <summary>
    /// A nested zip bomb, small on disk: <paramref name="baseSize"/> zeros, then <paramref name="levels"/> levels
    /// of zips each holding <paramref name="fanout"/> copies of the level below.
    /// </summary>
    public static byte[] Bomb(int baseSize, int fanout, int levels)
    {
        var current = Zip(("zeros.bin", new byte[baseSize]));
        for (var l = 0; l < levels; l++)
            current = Zip(Enumerable.Range(0, fanout).Select(i => ($"l{l}-{i}.zip", current)).ToArray());
        return current;
    }
}
