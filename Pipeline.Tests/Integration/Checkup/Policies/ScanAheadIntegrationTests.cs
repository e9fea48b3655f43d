using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Checkup.Scanning;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Checkup.Policies;

/// <summary>
/// Files scanned as soon as they are written (issue 12), against the real clamd: a file's verdict
/// ahead is judged exactly as the whole scan judges it, the whole scan takes it instead of asking
/// clamd again, rescans a file that changed size since, and fails as the ahead scan failed.
/// </summary>
[Category("Integration")]
public class ScanAheadIntegrationTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-06-01T12:00:00Z");
    private TempDir _dir = null!;
    private ClamdPool _pool = null!;
    private PolicyScanner _scanner = null!;
    private readonly ScanPolicy _policy = new("test", ScanPolicy.VersionOf("test policy"u8), null,
        new Dictionary<string, ScanProfile> { ["normal"] = new ScanProfile("normal") }, []);

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDir("pipeline-scan-ahead-");
        var socket = TestServices.Require("PIPELINE_CLAMD_SOCKET");
        _pool = new ClamdPool([ClamdEndpoint.Parse(socket.Contains("://", StringComparison.Ordinal) ? socket : "unix://" + socket)],
            new ClamdPoolOptions { Parallelism = 2 }, TimeProvider.System);
        _scanner = new PolicyScanner(_pool, SharedClamd.Limits, new ManualTime(Now));
        Put("bin/app", "#!/bin/sh\necho hello\n"u8.ToArray());
        Put("docs/eicar.txt", PolicyScannerIntegrationTests.Eicar);
    }

    [TearDown]
    public void TearDown()
    {
        _pool.Dispose();
        _dir.Dispose();
    }

    private void Put(string rel, byte[] content)
    {
        var full = _dir.Combine(rel.Split('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, content);
    }

    private Task<ScanVerdict> Scan(Func<string, Task<FileVerdict>?>? ahead) =>
        _scanner.ScanAsync(_dir.Path, ["bin/app", "docs/eicar.txt"], _policy, "normal", ahead, CancellationToken.None);

    [Test]
    public async Task A_file_scanned_ahead_is_judged_as_the_whole_scan_judges_it()
    {
        var ahead = new Dictionary<string, Task<FileVerdict>>
        {
            ["bin/app"] = _scanner.ScanFileAheadAsync(_dir.Path, "bin/app", _policy, "normal", Now, CancellationToken.None),
            ["docs/eicar.txt"] = _scanner.ScanFileAheadAsync(_dir.Path, "docs/eicar.txt", _policy, "normal", Now, CancellationToken.None),
        };
        var withAhead = await Scan(rel => ahead.GetValueOrDefault(rel));
        var inPlace = await Scan(null);
        Assert.That(withAhead.Decision, Is.EqualTo(ScanDecision.Reject));
        Assert.That(withAhead.Files.Single(f => f.Path == "docs/eicar.txt").Outcome, Is.EqualTo(FileOutcome.Infected), "malware found ahead rejects as before");
        Assert.That(withAhead.Digest(), Is.EqualTo(inPlace.Digest()), "the same verdict, byte for byte, as scanning in place");
    }

    [Test]
    public async Task The_whole_scan_takes_the_verdict_ahead_instead_of_asking_clamd_again()
    {
        // A verdict no clamd would give for this clean file: seen in the result only if the whole scan took it.
        var marked = new FileVerdict("bin/app", new string('a', 64), new FileInfo(_dir.Combine("bin", "app")).Length, FileType.Unknown,
            FileOutcome.Infected, "Ahead.Marker", "scanned ahead");
        var verdict = await Scan(rel => rel == "bin/app" ? Task.FromResult(marked) : null);
        Assert.That(verdict.Files.Single(f => f.Path == "bin/app"), Is.SameAs(marked));
        Assert.That(verdict.Files.Single(f => f.Path == "docs/eicar.txt").Outcome, Is.EqualTo(FileOutcome.Infected), "a file with no verdict ahead is scanned in place");
    }

    [Test]
    public async Task A_file_whose_size_changed_since_its_scan_ahead_is_scanned_again()
    {
        var stale = new FileVerdict("bin/app", new string('a', 64), 1, FileType.Unknown, FileOutcome.Infected, "Ahead.Marker", "scanned ahead");
        var verdict = await Scan(rel => rel == "bin/app" ? Task.FromResult(stale) : null);
        var app = verdict.Files.Single(f => f.Path == "bin/app");
        Assert.That((app.Outcome, app.Detection), Is.EqualTo((FileOutcome.Clean, (string?)null)), "scanned again, as it is now");
    }

    [Test]
    public async Task A_scan_ahead_that_could_not_reach_clamd_fails_the_whole_scan_with_its_exception()
    {
        var down = Task.FromException<FileVerdict>(new ClamdException("CLAMD-UNREACHABLE", "no clamd endpoint answered", isTransient: true));
        var e = (await Assert.ThrowsAsync<ClamdException>(() => Scan(rel => rel == "bin/app" ? down : null)))!;
        Assert.That((e.Code, e.IsTransient), Is.EqualTo(("CLAMD-UNREACHABLE", true)));
        Assert.That(e.Message, Does.Contain("no clamd endpoint answered"), "an outage of ours, reported as such, never a clean file");
    }
}
