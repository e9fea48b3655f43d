using System.Formats.Tar;
using System.IO.Compression;
using Pipeline.Registry;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Registry.Layers;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class LayerBuilderTests
{
    private static readonly DateTimeOffset Pinned = new(2024, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly List<string> _temps = [];

    private string NewTemp()
    {
        var dir = Path.Combine(Path.GetTempPath(), "layer-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        _temps.Add(dir);
        return dir;
    }

    [TearDown]
    public void Cleanup()
    {
        foreach (var d in _temps) try { Directory.Delete(d, true); } catch (IOException) { }
        _temps.Clear();
    }

    private static int Octal(string s) => Convert.ToInt32(s, 8);

    /// <summary>Writes the two sample files into a fresh folder with the given on-disk metadata.</summary>
    private string Source(string appContent, DateTime diskTime, int diskUid, UnixFileMode diskMode)
    {
        var dir = NewTemp();
        var app = Path.Combine(dir, "app.bin");
        var cfg = Path.Combine(dir, "settings.json");
        File.WriteAllText(app, appContent);
        File.WriteAllText(cfg, "{\"a\":1}");
        foreach (var f in new[] { app, cfg })
        {
            File.SetLastWriteTimeUtc(f, diskTime);
            File.SetLastAccessTimeUtc(f, diskTime);
            File.SetUnixFileMode(f, diskMode);
            if (Environment.UserName == "root") Run("chown", $"{diskUid}:{diskUid} {f}");
        }
        return dir;
    }

    private static IReadOnlyList<LayerEntry> Entries(string dir) =>
    [
        new(Path.Combine(dir, "settings.json"), "/opt/app/etc/settings.json", Octal("644"), 1000, 1000),
        new(Path.Combine(dir, "app.bin"), "/opt/app/bin/app", Octal("755")),
        new(null, "/opt/app/data", Octal("750"), 1000, 1000),
    ];

    private static string Run(string file, string args) =>
        Shell.Run(file, args.Split(' ', StringSplitOptions.RemoveEmptyEntries)).EnsureSuccess($"{file} {args}").Stdout;

    [Test]
    public async Task Same_input_from_different_folders_gives_identical_blobs()
    {
        var one = Source("binary-v1", new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc), 1234, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var two = Source("binary-v1", new DateTime(2019, 6, 6, 6, 6, 6, DateTimeKind.Utc), 4321, UnixFileMode.UserRead | UnixFileMode.OtherRead | UnixFileMode.UserExecute);
        var layer1 = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(one), Pinned);
        var layer2 = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(two), Pinned);

        Assert.That(layer2.Descriptor.Digest, Is.EqualTo(layer1.Descriptor.Digest));
        Assert.That(layer2.DiffId, Is.EqualTo(layer1.DiffId));
        Assert.That(File.ReadAllBytes(layer2.BlobPath), Is.EqualTo(File.ReadAllBytes(layer1.BlobPath)));
        Assert.That(layer1.Descriptor.MediaType, Is.EqualTo(MediaTypes.OciLayerTarGzip));
        Assert.That(layer1.Descriptor.Size, Is.EqualTo(new FileInfo(layer1.BlobPath).Length));
        Assert.That(Path.GetFileName(layer1.BlobPath), Is.EqualTo(layer1.Descriptor.Digest.Hex));
        await using var blob = File.OpenRead(layer1.BlobPath);
        Assert.That(Digest.Compute(blob), Is.EqualTo(layer1.Descriptor.Digest));
        await using var gz = new GZipStream(File.OpenRead(layer1.BlobPath), CompressionMode.Decompress);
        Assert.That(Digest.Compute(gz), Is.EqualTo(layer1.DiffId), "diffID is the sha256 of the uncompressed tar");
    }

    [Test]
    public async Task Changing_one_byte_changes_the_digest()
    {
        var t = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var a = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(Source("binary-v1", t, 0, UnixFileMode.UserRead)), Pinned);
        var b = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(Source("binary-v2", t, 0, UnixFileMode.UserRead)), Pinned);
        Assert.That(b.Descriptor.Digest, Is.Not.EqualTo(a.Descriptor.Digest));
        Assert.That(b.DiffId, Is.Not.EqualTo(a.DiffId));
        var c = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(Source("binary-v1", t, 0, UnixFileMode.UserRead)), Pinned.AddSeconds(1));
        Assert.That(c.DiffId, Is.Not.EqualTo(a.DiffId), "the pinned mtime is part of the content");
    }

    [Test]
    public async Task Gnu_tar_lists_expected_entries_modes_owners_and_mtime()
    {
        var dir = Source("binary-v1", DateTime.UtcNow, 77, UnixFileMode.UserRead);
        var layer = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(dir), Pinned);
        var env = "--numeric-owner --utc";
        var listing = Run("tar", $"-tvzf {layer.BlobPath} {env}").Trim().Split('\n');
        string Line(string perms, string owner, string size, string name) => $"{perms} {owner} {size} 2024-03-01 12:00 {name}";
        var normalized = listing.Select(l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries))).ToArray();
        Assert.That(normalized, Is.EqualTo(new[]
        {
            Line("drwxr-xr-x", "0/0", "0", "opt/"),
            Line("drwxr-xr-x", "0/0", "0", "opt/app/"),
            Line("drwxr-xr-x", "0/0", "0", "opt/app/bin/"),
            Line("-rwxr-xr-x", "0/0", "9", "opt/app/bin/app"),
            Line("drwxr-x---", "1000/1000", "0", "opt/app/data/"),
            Line("drwxr-xr-x", "0/0", "0", "opt/app/etc/"),
            Line("-rw-r--r--", "1000/1000", "7", "opt/app/etc/settings.json"),
        }));
    }

    [Test]
    public async Task Tar_headers_carry_no_names_times_or_pax_records()
    {
        var dir = Source("binary-v1", DateTime.UtcNow, 0, UnixFileMode.UserRead);
        var layer = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(dir), Pinned);
        await using var gz = new GZipStream(File.OpenRead(layer.BlobPath), CompressionMode.Decompress);
        using var reader = new TarReader(gz);
        var count = 0;
        while (reader.GetNextEntry() is { } entry)
        {
            count++;
            Assert.That(entry.Format, Is.EqualTo(TarEntryFormat.Gnu), entry.Name);
            Assert.That(entry.EntryType, Is.AnyOf(TarEntryType.Directory, TarEntryType.RegularFile), entry.Name);
            var gnu = (GnuTarEntry)entry;
            Assert.That(gnu.UserName, Is.Empty);
            Assert.That(gnu.GroupName, Is.Empty);
            Assert.That(gnu.ModificationTime, Is.EqualTo(Pinned));
            Assert.That(gnu.AccessTime.ToUnixTimeSeconds(), Is.LessThanOrEqualTo(0), "no atime");
            Assert.That(gnu.ChangeTime.ToUnixTimeSeconds(), Is.LessThanOrEqualTo(0), "no ctime");
        }
        Assert.That(count, Is.EqualTo(7));
    }

    [Test]
    public async Task Zstd_option_produces_zstd_media_type_and_same_diffid()
    {
        var dir = Source("binary-v1", DateTime.UtcNow, 0, UnixFileMode.UserRead);
        var gzip = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(dir), Pinned);
        var zstd = await new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(Entries(dir), Pinned, LayerCompression.Zstd);
        Assert.That(zstd.Descriptor.MediaType, Is.EqualTo(MediaTypes.OciLayerTarZstd));
        Assert.That(zstd.DiffId, Is.EqualTo(gzip.DiffId));
        Assert.That(zstd.Descriptor.Digest, Is.Not.EqualTo(gzip.Descriptor.Digest));
    }

    private async Task<RegistryException> Rejected(params LayerEntry[] entries) =>
        (await Assert.ThrowsAsync<RegistryException>(() => new LayerBuilder(new BlobStore(NewTemp())).BuildAsync(entries, Pinned)))!;

    [TestCase("4755", "setuid/setgid/sticky")]
    [TestCase("2755", "setuid/setgid/sticky")]
    [TestCase("1777", "setuid/setgid/sticky")]
    [TestCase("10644", "only permission bits")]
    public async Task Rejects_special_mode_bits(string mode, string reason)
    {
        var file = Path.Combine(NewTemp(), "f");
        File.WriteAllText(file, "x");
        var ex = await Rejected(new LayerEntry(file, "/bin/f", Octal(mode)));
        Assert.That(ex.Code, Is.EqualTo("REG-LAYER-002"));
        Assert.That(ex.Message, Does.Contain(reason));
    }

    [TestCase("/opt/../etc/passwd", "'..' segments")]
    [TestCase("opt/app", "must be absolute")]
    [TestCase("/opt//app", "empty segments")]
    [TestCase("/opt/./app", "'.' segments")]
    [TestCase("/", "root directory")]
    public async Task Rejects_bad_target_paths(string target, string reason)
    {
        var ex = await Rejected(new LayerEntry(null, target, Octal("755")));
        Assert.That(ex.Code, Is.EqualTo("REG-LAYER-001"));
        Assert.That(ex.Message, Does.Contain(reason));
    }

    [Test]
    public async Task Rejects_symlink_source()
    {
        var dir = NewTemp();
        File.WriteAllText(Path.Combine(dir, "real"), "x");
        File.CreateSymbolicLink(Path.Combine(dir, "link"), Path.Combine(dir, "real"));
        var ex = await Rejected(new LayerEntry(Path.Combine(dir, "link"), "/bin/x", Octal("755")));
        Assert.That(ex.Code, Is.EqualTo("REG-LAYER-004"));
        Assert.That(ex.Message, Does.Contain("symbolic link"));
    }

    [Test]
    public async Task Rejects_device_and_fifo_sources()
    {
        var ex = await Rejected(new LayerEntry("/dev/null", "/bin/x", Octal("644")));
        Assert.That(ex.Code, Is.EqualTo("REG-LAYER-004"));
        Assert.That(ex.Message, Does.Contain("CharDevice"));

        var fifo = Path.Combine(NewTemp(), "fifo");
        Run("mkfifo", fifo);
        ex = await Rejected(new LayerEntry(fifo, "/bin/x", Octal("644")));
        Assert.That(ex.Message, Does.Contain("Fifo"));
    }

    [Test]
    public async Task Rejects_duplicate_targets_and_file_used_as_parent()
    {
        var file = Path.Combine(NewTemp(), "f");
        File.WriteAllText(file, "x");
        var ex = await Rejected(new LayerEntry(file, "/a", Octal("644")), new LayerEntry(file, "/a", Octal("644")));
        Assert.That(ex.Code, Is.EqualTo("REG-LAYER-003"));
        Assert.That(ex.Message, Does.Contain("listed twice"));
        ex = await Rejected(new LayerEntry(file, "/a", Octal("644")), new LayerEntry(file, "/a/b", Octal("644")));
        Assert.That(ex.Message, Does.Contain("is a file but also the parent"));
    }

    [Test]
    public async Task Rejected_build_leaves_no_blob_or_temp_file()
    {
        var root = NewTemp();
        var store = new BlobStore(root);
        await Assert.ThrowsAsync<RegistryException>(() => new LayerBuilder(store).BuildAsync([new LayerEntry("/dev/null", "/x", Octal("644"))], Pinned));
        Assert.That(Directory.GetFiles(root, "*", SearchOption.AllDirectories), Is.Empty);
    }
}
