using System.Buffers.Binary;
using Pipeline.Checkup.Archives;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Checkup.Archives.TestArchives;

namespace Pipeline.Tests.Checkup.Archives;

/// <summary>The archive inspector on archives built in the test: real sizes, every level, and it stops at every cap.</summary>
public class ArchiveInspectorTests
{
    private const long MiB = 1L << 20;
    private static readonly ClamdLimits Clamd = new(4 * MiB, 16 * MiB, 4, 50, 64 * MiB, "test limits");
    private static readonly InspectionLimits Loose = new(Clamd, 1L << 30, 1_000_000);
    private TempDir _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDir("pipeline-inspect-");

    [TearDown]
    public void TearDown() => _dir.Dispose();

    private ArchiveReport Inspect(byte[] file, InspectionLimits? limits = null, TimeProvider? time = null, string name = "a.bin")
    {
        var path = _dir.Combine(name);
        File.WriteAllBytes(path, file);
        return ArchiveInspector.Inspect(path, name, limits ?? Loose, time ?? TimeProvider.System, CancellationToken.None)
               ?? throw new AssertionException("not recognised as an archive");
    }

    [Test]
    public void A_zip_is_measured_member_by_member_with_the_bytes_really_unpacked()
    {
        var r = Inspect(Zip(("docs/a.txt", new byte[1000]), ("b.bin", new byte[3 * MiB])), name: "d.jar");
        Assert.That(r.Issues, Is.Empty);
        Assert.That(r.Complete, Is.True);
        Assert.That(r.Format, Is.EqualTo("zip"));
        Assert.That(r.Members.Select(m => (m.Path, m.Size, m.Level)), Is.EqualTo(new[] { ("d.jar!docs/a.txt", 1000L, 1), ("d.jar!b.bin", 3 * MiB, 1) }));
        Assert.That(r.TotalUnpacked, Is.EqualTo(3 * MiB + 1000));
        Assert.That(r.Ratio, Is.GreaterThan(100), "3 MiB of zeros pack to a few KiB");
        Assert.That(r.Nesting, Is.EqualTo(1));
    }

    [Test]
    public void A_member_past_clamds_MaxFileSize_is_named_with_the_limit_and_one_exactly_at_it_is_not()
    {
        var over = Inspect(Zip(("big.bin", ZerosEndingInEicar(4 * MiB + 1))), name: "x.zip");
        Assert.That(over.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.FileSize));
        Assert.That(over.Issues.Single().Member, Is.EqualTo("x.zip!big.bin"));
        Assert.That(over.Issues.Single().Detail, Does.Contain("MaxFileSize").And.Contain("4194304").And.Contain("test limits"));
        Assert.That(over.Complete, Is.False);

        var at = Inspect(Zip(("big.bin", ZerosEndingInEicar(4 * MiB))), name: "x.zip");
        Assert.That(at.Issues, Is.Empty, "clamd reads a member of exactly MaxFileSize bytes");
        Assert.That(at.Members.Single().Size, Is.EqualTo(4 * MiB));
    }

    [Test]
    public void A_header_that_understates_the_size_does_not_hide_the_bytes()
    {
        // Both the local header and the central directory claim 100 bytes; the deflate data holds 5 MiB.
        var zip = Zip(("big.bin", new byte[5 * MiB]));
        BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(22), 100); // local header: uncompressed size
        var central = zip.AsSpan().LastIndexOf("PK\x01\x02"u8);
        BinaryPrimitives.WriteUInt32LittleEndian(zip.AsSpan(central + 24), 100); // central directory: uncompressed size
        var r = Inspect(zip, name: "lie.zip");
        var issue = r.Issues.Single();
        Assert.That(issue.Kind, Is.AnyOf(ArchiveIssueKind.FileSize, ArchiveIssueKind.Uninspectable), issue.Detail);
        Assert.That(issue.Member, Does.StartWith("lie.zip"));
        Assert.That(r.IsClean, Is.False, "a lying header never yields a clean report");
    }

    [Test]
    public void A_member_only_the_central_directory_lists_cannot_be_vouched_for()
    {
        // The second local header is disguised as the end of the archive: a local-header walk stops before it,
        // while clamd (by the central directory) would find it. The inspector must not call the zip complete.
        var zip = Zip(("a.txt", "first"u8.ToArray()), ("b.bin", ZerosEndingInEicar(5 * MiB)));
        var second = zip.AsSpan(4).IndexOf("PK\x03\x04"u8) + 4;
        "PK\x05\x06"u8.CopyTo(zip.AsSpan(second));
        var r = Inspect(zip, name: "hide.zip");
        Assert.That(r.IsClean, Is.False);
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Uninspectable));
        Assert.That(r.Issues.Single().Member, Is.EqualTo("hide.zip!b.bin"));
        Assert.That(r.Issues.Single().Detail, Does.Contain("central directory"));
    }

    [Test]
    public void A_truncated_archive_cannot_be_vouched_for()
    {
        var zip = Zip(("a.bin", System.Security.Cryptography.RandomNumberGenerator.GetBytes(200_000)));
        var r = Inspect(zip[..(zip.Length / 2)], name: "cut.zip");
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Uninspectable), r.Issues.Single().Detail);

        var tgz = TarGz(("a.bin", System.Security.Cryptography.RandomNumberGenerator.GetBytes(200_000)));
        var t = Inspect(tgz[..(tgz.Length / 2)], name: "cut.tar.gz");
        Assert.That(t.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Uninspectable), t.Issues.Single().Detail);
    }

    [Test]
    public void Nesting_past_clamds_MaxRecursion_names_the_member_clamd_never_reaches()
    {
        var deep = Zip(("l1.zip", Zip(("l2.zip", Zip(("l3.zip", Zip(("l4.txt", "x"u8.ToArray()))))))));
        var r = Inspect(deep, name: "deep.zip");
        var issue = r.Issues.Single();
        Assert.That(issue.Kind, Is.EqualTo(ArchiveIssueKind.Recursion));
        Assert.That(issue.Member, Is.EqualTo("deep.zip!l1.zip!l2.zip!l3.zip!l4.txt"));
        Assert.That(issue.Detail, Does.Contain("MaxRecursion 4"));

        var ok = Inspect(Zip(("l1.zip", Zip(("l2.txt", "x"u8.ToArray())))), name: "ok.zip");
        Assert.That(ok.Issues, Is.Empty);
        Assert.That((ok.DeepestLevel, ok.Nesting), Is.EqualTo((2, 2)));
    }

    [Test]
    public void Zip_in_zip_in_tar_gz_counts_each_archive_and_the_tar_gz_as_one()
    {
        var nested = TarGz(("c.zip", Zip(("b.zip", Zip(("a.txt", "x"u8.ToArray()))))));
        var r = Inspect(nested, Loose with { Clamd = Clamd with { MaxRecursion = 8 } }, name: "n.tgz");
        Assert.That(r.Issues, Is.Empty);
        Assert.That((r.Nesting, r.DeepestLevel), Is.EqualTo((3, 4)), "policy nesting: tgz, c.zip, b.zip; clamd levels: the gzip payload is one more");
        Assert.That(r.Members.Last().Path, Is.EqualTo("n.tgz!c.zip!b.zip!a.txt"));
    }

    [Test]
    public void A_tar_gz_is_one_archive_whose_payload_and_members_are_levels_as_clamd_counts_them()
    {
        var r = Inspect(TarGz(("dir/a.txt", new byte[10]), ("b.bin", new byte[2000])), name: "t.tgz");
        Assert.That(r.Issues, Is.Empty);
        Assert.That(r.Format, Is.EqualTo("gzip"));
        Assert.That(r.Members.Select(m => (m.Path, m.Level)), Is.EqualTo(new[] { ("t.tgz!(gzip)", 1), ("t.tgz!dir/a.txt", 2), ("t.tgz!b.bin", 2) }));
        Assert.That(r.Nesting, Is.EqualTo(1));
    }

    [TestCase("bzip2")]
    [TestCase("xz")]
    public void Bzip2_and_xz_payloads_are_measured(string tool)
    {
        var r = Inspect(Cli(tool, Tar(("big.bin", ZerosEndingInEicar(5 * MiB)))), name: "t.tar.x");
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.FileSize), r.Issues.Single().Detail);
        Assert.That(r.Issues.Single().Member, Is.EqualTo($"t.tar.x!({tool})"), "the decompressed tar itself is past MaxFileSize");
        var small = Inspect(Cli(tool, Tar(("a.bin", new byte[1000]))), name: "s.tar.x");
        Assert.That(small.Issues, Is.Empty);
        Assert.That(small.Members.Last().Path, Is.EqualTo("s.tar.x!a.bin"));
    }

    [Test]
    public void A_7z_is_measured_and_its_big_member_found()
    {
        var r = Inspect(SevenZip(("small.txt", new byte[100]), ("big.bin", ZerosEndingInEicar(5 * MiB))), name: "a.7z");
        Assert.That(r.Format, Is.EqualTo("7z"));
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.FileSize), r.Issues.Single().Detail);
        Assert.That(r.Issues.Single().Member, Is.EqualTo("a.7z!big.bin"));
    }

    [Test]
    public void A_nested_zip_bomb_costs_no_more_than_the_smallest_limit()
    {
        var bomb = Bomb(2 * (int)MiB, 20, 2); // 800 MiB unpacked at the bottom level, three levels deep
        Assert.That(bomb.Length, Is.LessThan(200_000));
        var r = Inspect(bomb, Loose with { MaxCompressionRatio = 1_000_000 }, name: "bomb.zip");
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.ScanSize), r.Issues.Single().Detail);
        Assert.That(r.TotalUnpacked, Is.LessThanOrEqualTo(16 * MiB + (1 << 17)), "stopped at clamd's MaxScanSize, not after 2 GiB");

        var byRatio = Inspect(bomb, Loose with { MaxCompressionRatio = 200 }, name: "bomb.zip");
        Assert.That(byRatio.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Ratio), byRatio.Issues.Single().Detail);
        Assert.That(byRatio.Issues.Single().Detail, Does.Contain("maxCompressionRatio of 200"));
    }

    [Test]
    public void The_policys_unpacked_size_is_a_limit_of_its_own()
    {
        var r = Inspect(Zip(("a.bin", new byte[3 * MiB]), ("b.bin", new byte[3 * MiB])), Loose with { MaxUnpackedSize = 5 * MiB }, name: "u.zip");
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Unpacked));
        Assert.That(r.Issues.Single().Member, Is.EqualTo("u.zip!b.bin"));
    }

    [Test]
    public void More_members_than_clamds_MaxFiles_are_unscannable()
    {
        var r = Inspect(Zip(Enumerable.Range(0, 51).Select(i => ($"f{i}.txt", new byte[1])).ToArray()), name: "many.zip");
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Files));
        Assert.That(r.Issues.Single().Member, Is.EqualTo("many.zip!f50.txt"));
    }

    [Test]
    public void Formats_clamd_unpacks_but_the_engine_cannot_read_are_uninspectable_at_any_level()
    {
        var rar = "Rar!\x1A\x07\x01\x00"u8.ToArray().Concat(new byte[100]).ToArray();
        var top = Inspect(rar, name: "a.rar");
        Assert.That(top.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Uninspectable));
        Assert.That(top.Issues.Single().Detail, Does.Contain("rar"));
        var nested = Inspect(Zip(("in/x.cab", "MSCF\0\0\0\0"u8.ToArray())), name: "o.zip");
        Assert.That(nested.Issues.Single().Member, Is.EqualTo("o.zip!in/x.cab"));
        Assert.That(nested.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Uninspectable));
    }

    [Test]
    public void A_file_that_is_no_archive_is_not_reported()
    {
        var path = _dir.Combine("plain.txt");
        File.WriteAllText(path, "hello");
        Assert.That(ArchiveInspector.Inspect(path, "plain.txt", Loose, TimeProvider.System, CancellationToken.None), Is.Null);
    }

    [Test]
    public void The_time_cap_stops_a_slow_inspection()
    {
        var r = Inspect(Zip(Enumerable.Range(0, 40).Select(i => ($"f{i}.txt", new byte[10])).ToArray()), time: new SteppingTime(TimeSpan.FromSeconds(10)), name: "slow.zip");
        Assert.That(r.Issues.Single().Kind, Is.EqualTo(ArchiveIssueKind.Uninspectable));
        Assert.That(r.Issues.Single().Detail, Does.Contain("longer than 120 s"));
    }

    /// <summary>A clock that moves on by <paramref name="step"/> each time it is read.</summary>
    private sealed class SteppingTime(TimeSpan step) : TimeProvider
    {
        private long _ticks;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => Interlocked.Add(ref _ticks, step.Ticks);
    }
}
