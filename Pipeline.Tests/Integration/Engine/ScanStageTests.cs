using System.Security.Cryptography;
using System.Text.Json;
using Pipeline.Checkup.Checksums;
using Pipeline.Checkup.Policies;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Quarantine;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Integration.Checkup.Policies;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>The scan stage with a policy file against real clamd, its ledger evidence, quarantine and release.</summary>
[Category("Integration")]
public class ScanStageTests
{
    private const string PolicyText = """
        name: team
        profiles:
          - name: hoch
            limits:
              maxNestingDepth: 2
            fileTypes:
              - name: no-executables-in-docs
                paths: [docs/**]
                deny: [executable, script]
        """;

    private TempDir _dir = null!;

    [SetUp]
    public void SetUp() => _dir = new TempDir("pipeline-scanstage-");

    [TearDown]
    public void TearDown() => _dir.Dispose();

    /// <summary>A delivery's facts and the scan step's typed input (what verify produced).</summary>
    private sealed record ScanCase(DeliveryContext Context, Verified Input)
    {
        public string WorkDir => Context.WorkDir;
        public Guid DeliveryId => Context.DeliveryId;
    }

    private static async Task<StageOutcome> Scan(ScanCase c) => (await new ScanStep().RunAsync(c.Context, new ScanInput(c.Input), new StepEvidence(), CancellationToken.None)).Outcome;

    private ScanCase Context(Dictionary<string, byte[]> files, ScanSelection? scan)
    {
        var pipelines = Directory.CreateDirectory(_dir.Combine("pipelines", "policies")).Parent!.FullName;
        File.WriteAllText(Path.Combine(pipelines, "policies", "team.yaml"), PolicyText);
        var work = _dir.Combine("work", "runs", "d1");
        var digests = new List<FileDigest>();
        foreach (var (rel, content) in files)
        {
            var full = Path.Combine(work, "tree", rel);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllBytes(full, content);
            digests.Add(new FileDigest(rel, content.Length, Convert.ToHexStringLower(SHA256.HashData(content))));
        }

        File.WriteAllText(Path.Combine(work, "tree", "SHA256SUMS"), string.Join("", digests.Select(d => $"{d.Sha256}  {d.Path}\n")));
        var settings = new EngineSettings(_dir.Combine("engine.yaml"), pipelines, _dir.Combine("work"), new DatabaseSettings("Host=unused", null),
            new ClamdSettings([TestServices.Require("PIPELINE_CLAMD_TCP").Insert(0, "tcp://")], 2, TimeSpan.FromMinutes(1), SharedClamd.Limits),
            new RegistrySettings(new Uri("http://127.0.0.1:1"), null), new InternalGitSettings(new Uri("http://127.0.0.1:1"), null));
        var definition = new PipelineDefinition("demo", "demo.yaml", "S", null, new SourceSettings(new Uri("file:///x"), null, new System.Text.RegularExpressions.Regex(".")),
            [], new ChecksumSettings("SHA256SUMS", ManifestSignature.Tag, null), new PublishSettings("a/b"), new ImageTargetSettings("apps/x", [])) { Scan = scan };
        var ctx = new DeliveryContext(Guid.CreateVersion7(), definition, settings, null!, new TagInfo("v1.0.0", new string('a', 40), true), work, TimeProvider.System);
        var fetched = new Fetched(new AnnotatedTag("v1.0.0", new string('a', 40), new string('b', 40), "commit", "S <s@example>", DateTimeOffset.UnixEpoch, "v1\n", new string('b', 40), new string('c', 40)),
            ctx.TreeDir, digests.Count, digests.Sum(d => d.Size));
        var checksums = new ChecksumReport("sha256", "sha256:" + new string('0', 64), digests.OrderBy(d => d.Path, StringComparer.Ordinal).ToList());
        return new ScanCase(ctx, new Verified(fetched, "S", checksums, new DeliveryManifest(1, [])));
    }

    [Test]
    public async Task A_clean_delivery_passes_and_the_evidence_names_policy_version_profile_and_clamd()
    {
        var ctx = Context(new() { ["bin/app"] = File.ReadAllBytes("/bin/true"), ["docs/README.md"] = "# hi\n"u8.ToArray() }, new ScanSelection("team", "hoch"));
        var outcome = await Scan(ctx);
        var ev = outcome.Evidence;
        Assert.That(ev["policy"], Is.EqualTo("team"));
        Assert.That(ev["policyVersion"], Is.EqualTo(ScanPolicy.VersionOf(File.ReadAllBytes(_dir.Combine("pipelines", "policies", "team.yaml")))));
        Assert.That(ev["profile"], Is.EqualTo("hoch"));
        Assert.That(ev["clamdVersion"], Does.StartWith("ClamAV 1."));
        Assert.That(ev["filesScanned"], Is.EqualTo("3"));
        Assert.That(ev["findingCount"], Is.EqualTo("0"));
        Assert.That(outcome.OutputDigest, Does.StartWith("sha256:"));
        Assert.That(File.Exists(Path.Combine(ctx.WorkDir, ScanStep.ReportFile)));
    }

    [Test]
    public async Task Without_a_scan_block_the_built_in_strict_policy_applies()
    {
        var ctx = Context(new() { ["a.txt"] = "a"u8.ToArray() }, null);
        var outcome = await Scan(ctx);
        Assert.That(outcome.Evidence["policy"], Is.EqualTo("built-in"));
        Assert.That(outcome.Evidence["profile"], Is.EqualTo("normal"));
    }

    [Test]
    public async Task An_unknown_profile_is_refused_before_scanning()
    {
        var ctx = Context(new() { ["a.txt"] = "a"u8.ToArray() }, new ScanSelection("team", "sehr-hoch"));
        var e = await Assert.ThrowsAsync<Pipeline.Checkup.CheckupException>(() => Scan(ctx));
        Assert.That(e!.Code, Is.EqualTo(PolicyErrors.UnknownProfile));
        Assert.That(e.Message, Does.Contain("has no profile 'sehr-hoch'; it has: hoch"));
    }

    [Test]
    public async Task The_evidence_records_what_was_inspected_inside_archives_and_an_archive_past_clamds_limit_is_rejected()
    {
        var small = Pipeline.Tests.Checkup.Archives.TestArchives.Zip(("a.txt", "hello"u8.ToArray()), ("b.txt", new byte[1000]));
        var ok = await Scan(Context(new() { ["lib/small.jar"] = small, ["ok.txt"] = "ok"u8.ToArray() }, null));
        Assert.That((ok.Evidence["archivesInspected"], ok.Evidence["archiveMembers"], ok.Evidence["archiveUnpackedBytes"], ok.Evidence["archivesIncomplete"]),
            Is.EqualTo(("1", "2", "1005", "0")));
        Assert.That(ok.Evidence["clamdLimits"], Does.Contain($"\"maxFileSize\":{SharedClamd.Limits.MaxFileSize}"));
        var archive = JsonDocument.Parse(ok.Evidence["archives"]).RootElement.EnumerateArray().Single();
        Assert.That((archive.GetProperty("file").GetString(), archive.GetProperty("format").GetString(), archive.GetProperty("complete").GetBoolean()),
            Is.EqualTo(("lib/small.jar", "zip", true)));

        var big = Pipeline.Tests.Checkup.Archives.TestArchives.Zip(("x/payload.bin", Pipeline.Tests.Checkup.Archives.TestArchives.NoisyEndingInEicar(SharedClamd.Limits.MaxFileSize + 1)));
        var e = await Assert.ThrowsAsync<ScanRejectedException>(() => Scan(Context(new() { ["lib/big.zip"] = big }, null)));
        Assert.That(e!.Code, Is.EqualTo(PolicyErrors.LimitFileSize));
        Assert.That(e.Message, Does.Contain("'lib/big.zip!x/payload.bin'").And.Contain("MaxFileSize").And.Contain("NOT scanned by clamd"));
        Assert.That(e.Evidence["archivesIncomplete"], Is.EqualTo("1"), "the attestation does not claim the archive was read to the end");
        var issue = JsonDocument.Parse(e.Evidence["archives"]).RootElement.EnumerateArray().Single().GetProperty("issue");
        Assert.That((issue.GetProperty("kind").GetString(), issue.GetProperty("member").GetString()), Is.EqualTo(("filesize", "lib/big.zip!x/payload.bin")));
        Assert.That(e.Evidence.Values, Has.None.Contains(TestServices.Require("PIPELINE_STATE_DIR")), "no local paths in signed evidence");
    }

    [Test]
    public async Task An_infected_delivery_is_rejected_with_findings_in_the_evidence_then_quarantined_and_released_with_a_ledger_record()
    {
        var eicarSha = Convert.ToHexStringLower(SHA256.HashData(PolicyScannerIntegrationTests.Eicar));
        var ctx = Context(new() { ["docs/eicar.txt"] = PolicyScannerIntegrationTests.Eicar, ["docs/run"] = "#!/bin/sh\n"u8.ToArray(), ["ok.txt"] = "ok"u8.ToArray() },
            new ScanSelection("team", "hoch"));
        var e = await Assert.ThrowsAsync<ScanRejectedException>(() => Scan(ctx));
        Assert.That(e!.Code, Is.EqualTo(PolicyErrors.Infected));
        Assert.That(e.Message, Does.Contain("docs/eicar.txt: malware: ").And.Contain("docs/run: script content is not allowed here"));
        Assert.That(e.Evidence["clamdVersion"], Does.StartWith("ClamAV"));
        Assert.That(e.Evidence["policyVersion"], Does.StartWith("sha256:"));
        var findings = JsonDocument.Parse(e.Evidence["findings"]).RootElement.EnumerateArray().ToList();
        Assert.That(findings, Has.Count.EqualTo(2));
        var eicar = findings.Single(f => f.GetProperty("file").GetString() == "docs/eicar.txt");
        Assert.That(eicar.GetProperty("sha256").GetString(), Is.EqualTo(eicarSha));
        Assert.That(eicar.GetProperty("detection").GetString(), Does.Contain("EICAR"));

        // The runner quarantines the folder; the release is recorded in the ledger.
        await using var db = await TestDatabase.CreateAsync();
        await using var ds = db.DataSource();
        var ledger = new LedgerStore(ds, TimeProvider.System);
        await ledger.MigrateAsync(default);
        await ledger.StartDeliveryAsync(ctx.DeliveryId, "demo", "v1.0.0", new string('a', 40), default);

        var store = new QuarantineStore(_dir.Combine("work"), TimeProvider.System);
        var dir = store.Add("demo", ctx.DeliveryId, ctx.WorkDir, "v1.0.0", new string('a', 40), "scan", e.Code, e.Message);
        Assert.That(File.Exists(Path.Combine(dir, ScanStep.ReportFile)), "the scan verdict goes to quarantine with the files");
        Assert.That(new FileInfo(Path.Combine(dir, "tree", "docs", "eicar.txt")).UnixFileMode & UnixFileMode.UserWrite, Is.EqualTo((UnixFileMode)0));
        var listed = store.List().Single();
        Assert.That((listed.DeliveryId, listed.Code, listed.Release), Is.EqualTo((ctx.DeliveryId, PolicyErrors.Infected, (QuarantineRelease?)null)));

        var noApprover = await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => QuarantineCommands.ReleaseAsync(store, ledger, ctx.DeliveryId, " ", null, default));
        Assert.That(noApprover!.Code, Is.EqualTo("QUARANTINE-APPROVER"));

        var entry = await QuarantineCommands.ReleaseAsync(store, ledger, ctx.DeliveryId, "Erika Mustermann", "test file, supplier informed", default);
        Assert.That(entry.Record.Stage, Is.EqualTo("quarantine-release"));
        Assert.That(entry.Record.Evidence["approver"], Is.EqualTo("Erika Mustermann"));
        Assert.That(entry.Record.Evidence["rejectedCode"], Is.EqualTo(PolicyErrors.Infected));
        Assert.That((await ledger.ReadAsync(ctx.DeliveryId, default)).Select(x => x.Record.Stage), Does.Contain("quarantine-release"));
        Assert.That(await ledger.VerifyChainAsync(default), Is.Null);
        Assert.That(store.Get(ctx.DeliveryId).Release!.Approver, Is.EqualTo("Erika Mustermann"));

        var twice = await Assert.ThrowsAsync<Pipeline.Engine.PipelineException>(() => QuarantineCommands.ReleaseAsync(store, ledger, ctx.DeliveryId, "Max", null, default));
        Assert.That(twice!.Code, Is.EqualTo("QUARANTINE-RELEASED"));
        Assert.That(twice.Message, Does.Contain("already released by Erika Mustermann"));
    }

    [Test]
    public void Policy_check_reports_errors_with_file_and_line_and_passes_the_shipped_policies()
    {
        var bad = _dir.Combine("bad.yaml");
        File.WriteAllText(bad, "name: bad\nprofiles:\n  - name: normal\n    encrypted: maybe\n");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Assert.That(PolicyCommands.Check([bad], null, stdout, stderr), Is.EqualTo(1));
        Assert.That(stderr.ToString(), Does.Contain(bad + ":4:").And.Contain("must be one of reject, quarantine, allow").And.Contain("SCAN-POLICY-INVALID"));

        var shipped = Path.Combine(TestServices.RepoRoot, "pipelines", "policies", "standard.yaml");
        stdout = new StringWriter();
        Assert.That(PolicyCommands.Check([shipped], null, stdout, new StringWriter()), Is.EqualTo(0));
        Assert.That(stdout.ToString(), Does.StartWith("OK standard sha256:"));
    }
}
