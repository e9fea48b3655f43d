using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Pipeline.Checkup.Policies;

namespace Pipeline.Tests.Checkup.Policies;

public class FileTypesTests
{
    [Test]
    public void Real_elf_binary_is_elf() =>
        Assert.That(FileTypes.Detect(File.ReadAllBytes("/bin/true").AsSpan(0, 512)), Is.EqualTo(FileType.Elf));

    [TestCase(new byte[] { 0x4D, 0x5A, 0x90, 0x00 }, FileType.Pe)]
    [TestCase(new byte[] { 0xCF, 0xFA, 0xED, 0xFE, 7, 0, 0, 1 }, FileType.MachO)]
    [TestCase(new byte[] { 0xFE, 0xED, 0xFA, 0xCE }, FileType.MachO)]
    [TestCase(new byte[] { 0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 2 }, FileType.MachO)]
    [TestCase(new byte[] { 0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 61 }, FileType.Java)]
    [TestCase(new byte[] { 0x50, 0x4B, 0x03, 0x04 }, FileType.Zip)]
    [TestCase(new byte[] { 0x1F, 0x8B, 0x08 }, FileType.Gzip)]
    [TestCase(new byte[] { 0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C }, FileType.SevenZip)]
    [TestCase(new byte[] { 0x25, 0x50, 0x44, 0x46, 0x2D }, FileType.Pdf)]
    [TestCase(new byte[] { }, FileType.Empty)]
    [TestCase(new byte[] { 0x68, 0x65, 0x6C, 0x6C, 0x6F }, FileType.Unknown)]
    public void Magic_bytes_decide_the_type(byte[] head, FileType expected) => Assert.That(FileTypes.Detect(head), Is.EqualTo(expected));

    [Test]
    public void A_shebang_line_is_a_script_whatever_the_name()
    {
        Assert.That(FileTypes.Detect("#!/bin/sh\necho hi\n"u8), Is.EqualTo(FileType.Script));
        Assert.That(FileTypes.Detect("echo hi\n#!/bin/sh\n"u8), Is.EqualTo(FileType.Unknown));
    }

    [Test]
    public void A_tar_is_recognised_by_ustar_at_offset_257()
    {
        var ms = new MemoryStream();
        using (var tar = new TarWriter(ms, TarEntryFormat.Pax, leaveOpen: true))
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, "a.txt") { DataStream = new MemoryStream("x"u8.ToArray()) });
        Assert.That(FileTypes.Detect(ms.ToArray().AsSpan(0, 512)), Is.EqualTo(FileType.Tar));
    }

    [Test]
    public void Group_names_resolve_and_unknown_names_do_not()
    {
        Assert.That(FileTypes.Resolve("executable"), Is.EquivalentTo(new[] { FileType.Elf, FileType.Pe, FileType.MachO, FileType.Java }));
        Assert.That(FileTypes.Resolve("mach-o"), Is.EqualTo(new[] { FileType.MachO }));
        Assert.That(FileTypes.Resolve("exe"), Is.Null);
        Assert.That(FileTypes.Resolve("unknown"), Is.Null);
    }

    [TestCase("docs/**", "docs/a.md", true)]
    [TestCase("docs/**", "docs/sub/deep/a.bin", true)]
    [TestCase("docs/**", "documents/a.md", false)]
    [TestCase("docs", "docs/a.md", true)]
    [TestCase("bin/*", "bin/tool", true)]
    [TestCase("bin/*", "bin/sub/tool", false)]
    [TestCase("**/*.sh", "run.sh", true)]
    [TestCase("**/*.sh", "a/b/run.sh", true)]
    [TestCase("**", "anything/at/all", true)]
    [TestCase("lib/?.so", "lib/a.so", true)]
    [TestCase("lib/?.so", "lib/ab.so", false)]
    public void Globs_match_paths(string glob, string path, bool expected) =>
        Assert.That(PathGlob.TryParse(glob)!.IsMatch(path), Is.EqualTo(expected));

    [TestCase("/etc/**")]
    [TestCase("../x")]
    [TestCase("a\\b")]
    [TestCase(" ")]
    public void Unsafe_globs_are_refused(string glob) => Assert.That(PathGlob.TryParse(glob), Is.Null);
}

public class DatabaseAgeTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-06-10T00:00:00Z");

    [Test]
    public void An_official_database_older_than_max_age_is_a_problem_and_a_fresh_one_is_not()
    {
        var p = new ScanProfile("normal") { MaxDatabaseAge = TimeSpan.FromDays(7) };
        Assert.That(PolicyScanner.DatabaseAgeProblem(p, "ClamAV 1.4.6/27650/Mon Jun  1 08:00:00 2026", Now), Does.Contain("2026-06-01 is older than maxDatabaseAge 7 days"));
        Assert.That(PolicyScanner.DatabaseAgeProblem(p, "ClamAV 1.4.6/27657/Mon Jun  8 08:00:00 2026", Now), Is.Null);
    }

    [Test]
    public void Custom_only_databases_report_no_date_and_unreadable_dates_are_a_problem()
    {
        var p = new ScanProfile("normal") { MaxDatabaseAge = TimeSpan.FromDays(7) };
        Assert.That(PolicyScanner.DatabaseAgeProblem(p, "ClamAV 1.4.6", Now), Is.Null);
        Assert.That(PolicyScanner.DatabaseAgeProblem(p, "ClamAV 1.4.6/27650/yesterday", Now), Does.Contain("cannot read"));
    }
}
