using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Checkup.Scanning;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Checkup.Policies;

/// <summary>The policy scanner against the real clamd with the project's own signature database.</summary>
/// <remarks>Over TCP the files are streamed (INSTREAM); over the Unix socket they are passed as open descriptors (FILDES).</remarks>
[Category("Integration")]
[TestFixture("PIPELINE_CLAMD_TCP")]
[TestFixture("PIPELINE_CLAMD_SOCKET")]
public class PolicyScannerIntegrationTests(string settingKey)
{
    // Built from two halves so this source file never holds the test string in one piece.
    internal static readonly byte[] Eicar = Encoding.ASCII.GetBytes(@"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*");

    private static readonly DateTimeOffset Now = DateTimeOffset.Parse("2026-06-01T12:00:00Z");
    private TempDir _dir = null!;
    private ClamdPool _pool = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = new TempDir("pipeline-scan-");
        var value = TestServices.Require(settingKey);
        var endpoint = settingKey == "PIPELINE_CLAMD_SOCKET" && !value.Contains("://", StringComparison.Ordinal) ? "unix://" + value : value;
        _pool = new ClamdPool([ClamdEndpoint.Parse(endpoint)], new ClamdPoolOptions { Parallelism = 3 }, TimeProvider.System);
        Assert.That(_pool.CanPassFileDescriptors, Is.EqualTo(settingKey == "PIPELINE_CLAMD_SOCKET"));
    }

    [TearDown]
    public void TearDown()
    {
        _pool.Dispose();
        _dir.Dispose();
    }

    private static ScanPolicy Policy(ScanProfile? profile = null, params FindingException[] exceptions) =>
        new("test", ScanPolicy.VersionOf("test policy"u8), null, new Dictionary<string, ScanProfile> { ["normal"] = profile ?? new ScanProfile("normal") }, exceptions);

    private string Put(string rel, byte[] content)
    {
        var full = _dir.Combine(rel.Split('/'));
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllBytes(full, content);
        return rel;
    }

    private Task<ScanVerdict> Scan(ScanPolicy policy, params string[] rels) =>
        new PolicyScanner(_pool, SharedClamd.Limits, new ManualTime(Now)).ScanAsync(_dir.Path, rels, policy, "normal", CancellationToken.None);

    internal static byte[] Zip(string name, byte[] content)
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        using (var s = zip.CreateEntry(name).Open()) s.Write(content);
        return ms.ToArray();
    }

    internal static byte[] TarGz(string name, byte[] content)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: true))
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
        return ms.ToArray();
    }

    private byte[] EncryptedZip(string entryName, byte[] content)
    {
        var src = _dir.Combine("enc-src");
        Directory.CreateDirectory(src);
        File.WriteAllBytes(Path.Combine(src, entryName), content);
        var target = _dir.Combine("enc-" + Guid.NewGuid().ToString("N") + ".zip");
        var r = Shell.Run("zip", ["-q", "-P", "secret", target, entryName], src);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var bytes = File.ReadAllBytes(target);
        File.Delete(target);
        Directory.Delete(src, true);
        return bytes;
    }

    [Test]
    public async Task Clean_files_are_accepted_with_digest_type_policy_and_clamd_version()
    {
        var rel = Put("docs/readme.md", "# Release notes\n"u8.ToArray());
        var v = await Scan(Policy(), rel);
        Assert.That(v.Decision, Is.EqualTo(ScanDecision.Accept));
        Assert.That(v.ClamdVersion, Does.StartWith("ClamAV 1."));
        Assert.That(v.PolicyVersion, Is.EqualTo(ScanPolicy.VersionOf("test policy"u8)));
        var f = v.Files.Single();
        Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Clean));
        Assert.That(f.Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData("# Release notes\n"u8))));
    }

    [Test]
    public async Task Eicar_plain_in_zip_and_in_tar_gz_is_infected_and_names_file_digest_detection()
    {
        var plain = Put("bin/eicar.com", Eicar);
        var zip = Put("dist/bundle.zip", Zip("inner/readme.txt", Eicar));
        var tgz = Put("dist/bundle.tar.gz", TarGz("inner/readme.txt", Eicar));
        var v = await Scan(Policy(), plain, zip, tgz);
        Assert.That(v.Decision, Is.EqualTo(ScanDecision.Reject));
        foreach (var f in v.Files)
        {
            Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Infected), f.Path);
            Assert.That(f.Detection, Does.Contain("EICAR"), f.Path);
            Assert.That(f.Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(_dir.Combine(f.Path.Split('/')))))));
        }

        var e = Assert.Throws<ScanRejectedException>(() => v.EnsureAccepted(new Dictionary<string, string>()));
        Assert.That(e!.Code, Is.EqualTo(PolicyErrors.Infected));
        Assert.That(e.Message, Does.Contain("bin/eicar.com: malware: ").And.Contain("EICAR"));
    }

    [Test]
    public async Task Large_files_are_hashed_and_scanned_whole_with_the_test_string_found_at_their_end()
    {
        // Over the Unix socket the hash (pread) and clamd read the same descriptor at the same time: neither
        // may disturb the other's position. Many buffers long, the test string in the last bytes.
        var rng = new Random(17);
        var clean = new byte[12 << 20];
        rng.NextBytes(clean);
        var infected = new byte[12 << 20];
        rng.NextBytes(infected);
        Eicar.CopyTo(infected, infected.Length - Eicar.Length);
        var v = await Scan(Policy(), Put("bin/clean.bin", clean), Put("bin/tail.bin", infected));
        var byPath = v.Files.ToDictionary(f => f.Path);
        Assert.That(byPath["bin/clean.bin"].Outcome, Is.EqualTo(FileOutcome.Clean));
        Assert.That(byPath["bin/clean.bin"].Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(clean))));
        Assert.That(byPath["bin/tail.bin"].Outcome, Is.EqualTo(FileOutcome.Infected));
        Assert.That(byPath["bin/tail.bin"].Detection, Does.Contain("EICAR"));
        Assert.That(byPath["bin/tail.bin"].Sha256, Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(infected))));
        Assert.That(v.Decision, Is.EqualTo(ScanDecision.Reject));
    }

    [Test]
    public async Task A_file_of_debians_clamav_testfiles_is_detected_by_our_database()
    {
        const string sample = "/usr/share/clamav-testfiles/clam.exe";
        TestServices.RequireFile(sample, "clamav-testfiles");
        var rel = Put("bin/clam.exe", File.ReadAllBytes(sample));
        var f = (await Scan(Policy(), rel)).Files.Single();
        Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Infected));
        Assert.That(f.Detection, Does.StartWith("Pipeline.Test.ClamavTestfile.clam.exe"));
        Assert.That(f.Type, Is.EqualTo(FileType.Pe));
    }

    [Test]
    public async Task Zip_in_tar_gz_beyond_the_nesting_limit_is_rejected_although_clamd_says_clean()
    {
        var data = "harmless\n"u8.ToArray();
        for (var i = 0; i < 5; i++) data = Zip($"level{i}.zip", data);
        var rel = Put("dist/deep.tar.gz", TarGz("deep.zip", data)); // tar.gz (1) + 5 zips = depth 6
        var v = await Scan(Policy(new ScanProfile("normal") { MaxNestingDepth = 4 }), rel);
        var f = v.Files.Single();
        Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Rejected));
        Assert.That(f.Detection, Is.Null, "clamd itself reports nothing here");
        Assert.That(f.Reason, Does.Contain("nested deeper than maxNestingDepth 4"));

        var allowed = await Scan(Policy(new ScanProfile("normal") { MaxNestingDepth = 6 }), rel);
        Assert.That(allowed.Files.Single().Outcome, Is.EqualTo(FileOutcome.Clean));
    }

    [Test]
    public async Task Eicar_deep_in_zips_in_tar_gz_is_still_infected()
    {
        var data = Eicar;
        for (var i = 0; i < 10; i++) data = Zip($"level{i}.zip", data);
        var rel = Put("dist/deep.tar.gz", TarGz("deep.zip", data));
        var f = (await Scan(Policy(), rel)).Files.Single();
        Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Infected).Or.EqualTo(FileOutcome.Rejected), f.Reason);
        Assert.That(f.Outcome, Is.Not.EqualTo(FileOutcome.Clean));
    }

    [Test]
    public async Task Encrypted_zip_clean_and_infected_are_rejected_by_default_and_held_for_review_when_the_profile_says_so()
    {
        var clean = Put("dist/clean-enc.zip", EncryptedZip("notes.txt", "nothing to see\n"u8.ToArray()));
        var infected = Put("dist/infected-enc.zip", EncryptedZip("eicar.txt", Eicar));
        var v = await Scan(Policy(), clean, infected);
        Assert.That(v.Decision, Is.EqualTo(ScanDecision.Reject));
        foreach (var f in v.Files)
        {
            Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Rejected), f.Path);
            Assert.That(f.Detection, Does.StartWith("Heuristics.Encrypted"), f.Path);
            Assert.That(f.Reason, Does.Contain("encrypted content").And.Contain("encryptedContent: reject"));
        }

        var review = await Scan(Policy(new ScanProfile("normal") { EncryptedContent = PolicyAction.Quarantine }), clean, infected);
        Assert.That(review.Decision, Is.EqualTo(ScanDecision.Review));
        var e = Assert.Throws<ScanRejectedException>(() => review.EnsureAccepted(new Dictionary<string, string>()));
        Assert.That(e!.Code, Is.EqualTo(PolicyErrors.Review));

        var allowed = await Scan(Policy(new ScanProfile("normal") { EncryptedContent = PolicyAction.Allow }), clean);
        Assert.That(allowed.Decision, Is.EqualTo(ScanDecision.Accept));
        Assert.That(allowed.Files.Single().Outcome, Is.EqualTo(FileOutcome.Allowed), "allowed, but flagged");
    }

    [Test]
    public async Task A_file_over_stream_max_length_is_never_reported_clean()
    {
        var rel = "dist/big.bin";
        Directory.CreateDirectory(_dir.Combine("dist"));
        await using (var fs = File.Create(_dir.Combine("dist", "big.bin"))) fs.SetLength((64L << 20) + 1);

        var byPolicy = (await Scan(Policy(), rel)).Files.Single();
        Assert.That(byPolicy.Outcome, Is.EqualTo(FileOutcome.Rejected));
        Assert.That(byPolicy.Reason, Does.Contain("over clamd's StreamMaxLength").And.Contain("NOT scanned"));

        var flagged = (await Scan(Policy(new ScanProfile("normal") { UnscannableLargeFiles = PolicyAction.Allow, MaxFileSize = 1L << 30 }), rel)).Files.Single();
        Assert.That(flagged.Outcome, Is.EqualTo(FileOutcome.Allowed));
        Assert.That(flagged.Sha256, Is.Null, "it was not scanned, and the verdict says so");

        // A policy that believes clamd takes more: the limit read from clamd's own configuration wins, so the
        // file is never sent and never reported clean.
        var lied = (await Scan(Policy(new ScanProfile("normal") { ScannerStreamMaxLength = 128L << 20, MaxFileSize = 128L << 20 }), rel)).Files.Single();
        Assert.That(lied.Outcome, Is.EqualTo(FileOutcome.Rejected), lied.Reason);
        Assert.That(lied.Reason, Does.Contain($"over clamd's StreamMaxLength ({SharedClamd.Limits.StreamMaxLength})").And.Contain("NOT scanned"));
    }

    [Test]
    public async Task A_file_over_2_GiB_is_rejected_unless_explicitly_allowed()
    {
        Directory.CreateDirectory(_dir.Combine("dist"));
        await using (var fs = File.Create(_dir.Combine("dist", "huge.img"))) fs.SetLength((2L << 30) + 1);
        var p = new ScanProfile("normal") { UnscannableLargeFiles = PolicyAction.Allow, MaxFileSize = 4L << 30, MaxTotalSize = 8L << 30 };
        var f = (await Scan(Policy(p), "dist/huge.img")).Files.Single();
        Assert.That(f.Outcome, Is.EqualTo(FileOutcome.Rejected));
        Assert.That(f.Reason, Does.Contain("over 2 GiB"));
        var ok = (await Scan(Policy(p with { AllowFilesOver2GiB = true }), "dist/huge.img")).Files.Single();
        Assert.That(ok.Outcome, Is.EqualTo(FileOutcome.Allowed));
    }

    [Test]
    public async Task An_exception_waives_exactly_that_file_and_detection_until_it_expires()
    {
        var rel = Put("tools/eicar.txt", Eicar);
        var other = Put("tools/eicar-copy.txt", [.. Eicar, (byte)'\n']);
        var first = (await Scan(Policy(), rel)).Files.Single();
        var waiver = new FindingException(first.Sha256!, first.Detection!, "AV vendor test file shipped for the customer's own scanner check", "Erika Mustermann", Now.AddDays(30));

        var v = await Scan(Policy(null, waiver), rel, other);
        var waived = v.Files.Single(f => f.Path == rel);
        Assert.That(waived.Outcome, Is.EqualTo(FileOutcome.Waived));
        Assert.That(waived.Reason, Does.Contain("Erika Mustermann").And.Contain("2026-07-01"));
        Assert.That(v.Files.Single(f => f.Path == other).Outcome, Is.EqualTo(FileOutcome.Infected), "another digest is not waived");
        Assert.That((await Scan(Policy(null, waiver), rel)).Decision, Is.EqualTo(ScanDecision.Accept));

        var expired = waiver with { Expires = Now.AddDays(-1) };
        var after = (await Scan(Policy(null, expired), rel)).Files.Single();
        Assert.That(after.Outcome, Is.EqualTo(FileOutcome.Infected));
        Assert.That(after.Reason, Does.Contain("EXPIRED on 2026-05-31").And.Contain("no longer waives"));

        var strict = (await Scan(Policy(new ScanProfile("normal") { ExceptionsAllowed = false }, waiver), rel)).Files.Single();
        Assert.That(strict.Outcome, Is.EqualTo(FileOutcome.Infected));
        Assert.That(strict.Reason, Does.Contain("does not allow exceptions"));
    }

    [Test]
    public async Task File_type_rules_judge_content_not_names()
    {
        var elf = Put("docs/manual.pdf", File.ReadAllBytes("/bin/true"));
        var script = Put("bin/tool", "#!/bin/sh\necho hi\n"u8.ToArray());
        var fine = Put("bin/real", File.ReadAllBytes("/bin/true"));
        var rules = new[]
        {
            new FileTypeRule("no-executables-in-docs", [PathGlob.TryParse("docs/**")!], [.. FileTypes.Resolve("executable")!, FileType.Script], PolicyAction.Reject),
            new FileTypeRule("no-scripts-in-bin", [PathGlob.TryParse("bin/**")!], [FileType.Script], PolicyAction.Reject),
        };
        var v = await Scan(Policy(new ScanProfile("normal") { FileTypeRules = rules }), elf, script, fine);
        var byPath = v.Files.ToDictionary(f => f.Path);
        Assert.That(byPath[elf].Outcome, Is.EqualTo(FileOutcome.Rejected));
        Assert.That(byPath[elf].Reason, Does.Contain("elf content is not allowed here (rule 'no-executables-in-docs'"));
        Assert.That(byPath[script].Outcome, Is.EqualTo(FileOutcome.Rejected));
        Assert.That(byPath[script].Reason, Does.Contain("script content").And.Contain("no-scripts-in-bin"));
        Assert.That(byPath[fine].Outcome, Is.EqualTo(FileOutcome.Clean));
    }

    [Test]
    public async Task Delivery_limits_reject_before_scanning()
    {
        var a = Put("a.txt", "a"u8.ToArray());
        var b = Put("b.txt", "b"u8.ToArray());
        var v = await Scan(Policy(new ScanProfile("normal") { MaxFiles = 1 }), a, b);
        Assert.That(v.Decision, Is.EqualTo(ScanDecision.Reject));
        Assert.That(v.Problems, Has.Some.Contains("2 files exceed the limit of 1 (maxFiles)"));
    }

    [Test]
    public async Task A_too_old_engine_is_refused_by_the_policy()
    {
        var a = Put("a.txt", "a"u8.ToArray());
        var v = await Scan(Policy(new ScanProfile("normal") { MinEngineVersion = new Version(99, 0) }), a);
        Assert.That(v.Decision, Is.EqualTo(ScanDecision.Reject));
        Assert.That(v.Problems, Has.Some.Contains("older than minEngineVersion 99.0"));
    }
}
