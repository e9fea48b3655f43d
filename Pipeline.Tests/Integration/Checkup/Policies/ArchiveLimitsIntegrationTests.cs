using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Checkup.Scanning;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Checkup.Archives.TestArchives;

namespace Pipeline.Tests.Integration.Checkup.Policies;

/// <summary>
/// Archives past the real clamd's limits (read from the configuration it runs with): clamd answers OK because it
/// skipped the content, and the scanner rejects them as unscannable, naming the member and the limit. The same
/// archives within the limits are found infected by clamd.
/// </summary>
[Category("Integration")]
public class ArchiveLimitsIntegrationTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-06-01T12:00:00Z");
    private TempDir _dir = null!;
    private ClamdPool _pool = null!;
    private ClamdLimits _limits = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDir("pipeline-archlimits-");
        _pool = new ClamdPool([ClamdEndpoint.Parse("tcp://" + TestServices.Require("PIPELINE_CLAMD_TCP"))], new ClamdPoolOptions { Parallelism = 2 }, TimeProvider.System);
        _limits = SharedClamd.Limits;
    }

    [TearDown]
    public void TearDown()
    {
        _pool.Dispose();
        _dir.Dispose();
    }

    private long Max => _limits.MaxFileSize;

    /// <summary>Zeros compress a thousandfold: without this, the policy's ratio limit would reject these archives before clamd's limits are judged.</summary>
    private static readonly ScanProfile NoRatio = new("normal") { MaxCompressionRatio = 1e9 };

    private async Task<(ClamdScanResult Clamd, FileVerdict Verdict)> Scan(string rel, byte[] content, ScanProfile? profile = null)
    {
        File.WriteAllBytes(_dir.Combine(rel), content);
        ClamdScanResult raw;
        (raw, _) = await _pool.ScanAsync(() => File.OpenRead(_dir.Combine(rel)), CancellationToken.None);
        var policy = new ScanPolicy("t", ScanPolicy.VersionOf("t"u8), null, new Dictionary<string, ScanProfile> { ["normal"] = profile ?? NoRatio }, []);
        var verdict = await new PolicyScanner(_pool, _limits, new ManualTime(Now)).ScanAsync(_dir.Path, [rel], policy, "normal", CancellationToken.None);
        TestContext.Out.WriteLine($"clamd: {raw.RawReply}; verdict: {verdict.Files.Single().Outcome} {verdict.Files.Single().Reason}");
        return (raw, verdict.Files.Single());
    }

    private static void AssertUnscannable(FileVerdict v, string code, string member, string limit)
    {
        Assert.That(v.Outcome, Is.EqualTo(FileOutcome.Rejected), v.Reason);
        Assert.That(v.Code, Is.EqualTo(code), v.Reason);
        Assert.That(v.Reason, Does.Contain($"'{member}").And.Contain(limit));
    }

    [Test]
    public async Task Eicar_in_a_zip_member_one_byte_past_MaxFileSize_is_skipped_by_clamd_and_rejected_as_unscannable()
    {
        Assert.That(Max, Is.GreaterThan(0).And.LessThan(256L << 20), "the shared clamd has a MaxFileSize to test against");
        var (clamd, v) = await Scan("big.zip", Zip(("payload.bin", ZerosEndingInEicar(Max + 1))));
        Assert.That(clamd.Verdict, Is.EqualTo(ClamdVerdict.Clean), "clamd skips the member silently: this is the false clean");
        AssertUnscannable(v, PolicyErrors.LimitFileSize, "big.zip!payload.bin", "MaxFileSize");
        Assert.That(v.Archive!.Complete, Is.False);
    }

    [Test]
    public async Task A_zip_member_exactly_at_MaxFileSize_is_read_by_clamd_and_found()
    {
        var (clamd, v) = await Scan("at.zip", Zip(("payload.bin", ZerosEndingInEicar(Max))));
        Assert.That(clamd.Verdict, Is.EqualTo(ClamdVerdict.Infected));
        Assert.That(v.Outcome, Is.EqualTo(FileOutcome.Infected), v.Reason);
    }

    [Test]
    public async Task The_same_zip_under_the_limit_is_found_by_clamd()
    {
        var (_, v) = await Scan("small.zip", Zip(("payload.bin", ZerosEndingInEicar(1 << 20))));
        Assert.That(v.Outcome, Is.EqualTo(FileOutcome.Infected), v.Reason);
    }

    [Test]
    public async Task Eicar_in_a_tar_gz_past_the_limit_is_rejected_naming_the_gzip_payload()
    {
        var (clamd, v) = await Scan("big.tar.gz", TarGz(("payload.bin", ZerosEndingInEicar(Max + 1))));
        Assert.That(clamd.Signature ?? "", Does.Not.Contain("EICAR"), "clamd never read the EICAR string (it says OK or names only its own limit)");
        AssertUnscannable(v, PolicyErrors.LimitFileSize, "big.tar.gz!(gzip)", "MaxFileSize");

        var (_, small) = await Scan("small.tar.gz", TarGz(("payload.bin", ZerosEndingInEicar(1 << 20))));
        Assert.That(small.Outcome, Is.EqualTo(FileOutcome.Infected), small.Reason);
    }

    [Test]
    public async Task One_level_nested_zip_in_zip_and_tar_gz_in_zip_past_the_limit_are_rejected_and_under_it_found()
    {
        var (clamd, v) = await Scan("outer.zip", Zip(("inner.zip", Zip(("payload.bin", ZerosEndingInEicar(Max + 1))))));
        Assert.That(clamd.Verdict, Is.EqualTo(ClamdVerdict.Clean), "clamd skips the nested member silently");
        AssertUnscannable(v, PolicyErrors.LimitFileSize, "outer.zip!inner.zip!payload.bin", "MaxFileSize");

        var (_, tgz) = await Scan("outer2.zip", Zip(("in.tar.gz", TarGz(("payload.bin", ZerosEndingInEicar(Max + 1))))));
        AssertUnscannable(tgz, PolicyErrors.LimitFileSize, "outer2.zip!in.tar.gz!(gzip)", "MaxFileSize");

        var (_, smallZip) = await Scan("outer3.zip", Zip(("inner.zip", Zip(("payload.bin", ZerosEndingInEicar(1 << 20))))));
        Assert.That(smallZip.Outcome, Is.EqualTo(FileOutcome.Infected), smallZip.Reason);
        var (_, smallTgz) = await Scan("outer4.zip", Zip(("in.tar.gz", TarGz(("payload.bin", ZerosEndingInEicar(1 << 20))))));
        Assert.That(smallTgz.Outcome, Is.EqualTo(FileOutcome.Infected), smallTgz.Reason);
    }

    [Test]
    public async Task A_zip_bomb_is_rejected_by_ratio_and_past_clamds_MaxScanSize_without_being_unpacked()
    {
        var bomb = Bomb(8 << 20, 16, 2); // 2 GiB at the bottom, well under a MiB on disk
        Assert.That(bomb.Length, Is.LessThan(1 << 20));
        var (_, byRatio) = await Scan("bomb.zip", bomb, new ScanProfile("normal"));
        Assert.That(byRatio.Outcome, Is.EqualTo(FileOutcome.Rejected), byRatio.Reason);
        Assert.That(byRatio.Code, Is.EqualTo(PolicyErrors.LimitRatio), byRatio.Reason);

        var loose = new ScanProfile("normal") { MaxCompressionRatio = 1e9, MaxUnpackedSize = 8L << 30 };
        var (_, byScanSize) = await Scan("bomb2.zip", bomb, loose);
        AssertUnscannable(byScanSize, PolicyErrors.LimitScanSize, "bomb2.zip!l1-", "MaxScanSize");
        Assert.That(byScanSize.Archive!.TotalUnpacked, Is.LessThanOrEqualTo(_limits.MaxScanSize + (1 << 20)), "the inspector stopped at clamd's MaxScanSize");
    }
}
