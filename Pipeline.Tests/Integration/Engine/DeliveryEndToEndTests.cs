using System.Net;
using System.Text.Json;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Sbom;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// Whole deliveries against the real services: git over HTTP (VCS A and B), clamd, the registry
/// and PostgreSQL. A good delivery ends in the registry (checked with skopeo); every bad one is
/// rejected at the right stage with a message naming the cause, and nothing is pushed.
/// </summary>
public class DeliveryEndToEndTests : DeliveryFixture
{
    [Test]
    public async Task A_good_delivery_is_verified_scanned_published_built_pushed_and_recorded()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var tagId = Shell.Git(s.Supplier.WorkTree, "rev-parse", "v1.0.0").Stdout.Trim();
        var commit = Shell.Git(s.Supplier.WorkTree, "rev-parse", "v1.0.0^{commit}").Stdout.Trim();

        var report = await s.RunAsync();

        var d = report.Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Accepted, (string?)null)), d.Reason);
        Assert.That(d.Entries.Select(e => (e.Record.Stage, e.Record.Verdict)), Is.EqualTo(new[]
        {
            ("fetch", Verdict.Passed), ("verify", Verdict.Passed), ("scan", Verdict.Passed),
            ("publish", Verdict.Passed), ("build", Verdict.Passed), ("push", Verdict.Passed),
        }));
        Assert.That(d.Entries[1].Record.Evidence["signer"], Is.EqualTo("Certified Release Key"));
        // Every file went to clamd as fetch wrote it: the scan step asked clamd about none of them again.
        var scan = d.Entries[2].Record.Evidence;
        Assert.That(scan["filesScannedAhead"], Is.EqualTo(scan["filesScanned"]).And.Not.EqualTo("0"));
        Assert.That(d.Entries[5].Record.Evidence.Single(e => e.Key.EndsWith(".blobs", StringComparison.Ordinal)).Value, Does.StartWith("uploaded 2,"),
            "the delivery's layer and config uploaded beside the publish, reported by the push");

        // The pushed image, seen by a client nobody on the team wrote.
        var image = d.Images.Single();
        Assert.That(image, Does.StartWith($"{Harness.Registry}/{s.RegistryRepository}@sha256:"));
        var digest = image[(image.IndexOf('@') + 1)..];
        var raw = Shell.Run("skopeo", ["inspect", "--tls-verify=false", "--raw", "docker://" + image]).EnsureSuccess("skopeo inspect --raw").Stdout;
        Assert.That("sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(raw))), Is.EqualTo(digest));
        Assert.That(JsonDocument.Parse(raw).RootElement.GetProperty("layers").GetArrayLength(), Is.EqualTo(2), "base layer + delivery layer");
        var annotations = JsonDocument.Parse(raw).RootElement.GetProperty("annotations");
        Assert.That(annotations.GetProperty("org.opencontainers.image.vendor").GetString(), Is.EqualTo("Test Supplier GmbH"));
        Assert.That(annotations.GetProperty("org.opencontainers.image.base.name").GetString(), Is.EqualTo($"{Harness.Registry}/pipeline-tests/base"));
        Assert.That(annotations.GetProperty("org.opencontainers.image.base.digest").GetString(), Is.EqualTo(Harness.BaseImage[(Harness.BaseImage.IndexOf('@') + 1)..]));
        var config = JsonDocument.Parse(Shell.Run("skopeo", ["inspect", "--tls-verify=false", "--config", "docker://" + image]).EnsureSuccess("skopeo --config").Stdout).RootElement.GetProperty("config");
        Assert.That(config.GetProperty("User").GetString(), Is.EqualTo("10001:10001"));
        Assert.That(config.GetProperty("Labels").GetProperty("org.opencontainers.image.revision").GetString(), Is.EqualTo(commit));
        Assert.That(config.GetProperty("Labels").GetProperty("org.opencontainers.image.version").GetString(), Is.EqualTo("v1.0.0"));
        var tagged = Shell.Run("skopeo", ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", $"docker://{Harness.Registry}/{s.RegistryRepository}:v1.0.0"]).EnsureSuccess("skopeo tag").Stdout.Trim();
        Assert.That(tagged, Is.EqualTo(digest));

        await AssertAttachedDocumentsAreValid(s.RegistryRepository, digest);

        // VCS B holds the verified tag.
        Assert.That(Shell.Run("git", ["--git-dir", s.InternalBare, "rev-parse", "refs/tags/v1.0.0"]).Stdout.Trim(), Is.EqualTo(tagId));

        // The ledger chain is intact, and a second pass does not process the tag again.
        var again = await s.RunAsync();
        Assert.That((again.Deliveries.Count, again.Skipped), Is.EqualTo((0, new[] { "v1.0.0" })));
        await using var ds = Harness.Database.DataSource();
        Assert.That(await new LedgerStore(ds, TimeProvider.System).VerifyChainAsync(default), Is.Null);
    }

    [Test]
    public async Task Building_the_same_delivery_twice_gives_the_same_image_digest()
    {
        var first = Harness.NewScenario();
        first.WriteDefinition();
        first.WriteGoodDelivery();
        first.Publish("v1.0.0");
        var a = (await first.RunAsync()).Deliveries.Single();
        Assert.That(a.Status, Is.EqualTo(DeliveryStatus.Accepted), a.Reason);

        // The same pipeline on a second, independent installation (its own work folder, keys and
        // ledger): the same tag must give the identical image, manifest and config included.
        await using var otherLedger = await TestDatabase.CreateAsync();
        var second = Harness.SecondInstallation(first, otherLedger);
        var b = (await second.RunAsync()).Deliveries.Single();
        Assert.That(b.Status, Is.EqualTo(DeliveryStatus.Accepted), b.Reason);
        Assert.That(b.DeliveryId, Is.Not.EqualTo(a.DeliveryId), "two independent runs");

        Assert.That(b.Images, Has.Count.EqualTo(1));
        Assert.That(b.Images, Is.EqualTo(a.Images), "manifest digest (image@sha256:...) identical");
        Assert.That(a.Images.Single(), Does.Contain("@sha256:"));
        var build = (DeliveryReport d) => d.Entries.Single(e => e.Record.Stage == "build").Record;
        Assert.That(build(b).OutputDigest, Is.EqualTo(build(a).OutputDigest), "the build stage's output digest (manifest or index)");
        string[] kinds = [".layers", ".image", ".index", ".sbom"];
        var digests = (DeliveryReport d) => build(d).Evidence.Where(e => kinds.Any(k => e.Key.EndsWith(k, StringComparison.Ordinal)))
            .OrderBy(e => e.Key, StringComparer.Ordinal).ToList();
        Assert.That(digests(a).Select(e => e.Key), Is.SupersetOf(new[] { "app.image", "app.layers", "app.sbom" }));
        Assert.That(digests(b), Is.EqualTo(digests(a)), "layer, manifest and SBOM digests");
        var config = (string image) => Shell.Run("skopeo", ["inspect", "--tls-verify=false", "--raw", "--config", "docker://" + image]).EnsureSuccess("skopeo --config").Stdout;
        Assert.That(config(b.Images.Single()), Is.EqualTo(config(a.Images.Single())), "config byte for byte");
    }

    [Test]
    public async Task A_tag_signed_by_an_unknown_key_is_rejected_at_verify_and_nothing_is_pushed()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        var stranger = SupplierRepo.NewKey(s.Root, "stranger");
        s.Publish("v1.0.0", stranger);

        var d = await RunRejected(s, "verify", "CHK-SSH-005");
        Assert.That(d.Reason, Does.Contain("SHA256:"), "the message names the key that signed");
    }

    [Test]
    public async Task A_file_changed_after_the_checksums_were_written_is_rejected()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("bin/app", "#!/bin/sh\necho tampered\n");
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "verify", "CHK-SUM-025");
        Assert.That(d.Reason, Does.Contain("bin/app"));
    }

    [Test]
    public async Task A_file_listed_but_missing_is_rejected()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        File.Delete(Path.Combine(s.Supplier.WorkTree, "docs", "README.md"));
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "verify", "CHK-SUM-023");
        Assert.That(d.Reason, Does.Contain("docs/README.md"));
    }

    [Test]
    public async Task A_file_not_listed_is_rejected()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("bin/backdoor", "#!/bin/sh\n");
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "verify", "CHK-SUM-024");
        Assert.That(d.Reason, Does.Contain("bin/backdoor"));
    }

    [Test]
    public async Task A_file_with_the_eicar_test_string_is_rejected_at_scan_and_quarantined()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("docs/sample.txt", Eicar.Bytes());
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "scan", "SCAN-INFECTED");
        Assert.That(d.Reason, Does.Contain("docs/sample.txt").And.Contain("Pipeline.Test.EICAR"));
        Assert.That(d.QuarantineDir, Is.Not.Null);
        Assert.That(File.Exists(Path.Combine(d.QuarantineDir!, "tree", "docs", "sample.txt")), Is.True, "the files are kept for the security team");
        var quarantineReport = JsonDocument.Parse(File.ReadAllText(Path.Combine(d.QuarantineDir!, "report.json"))).RootElement;
        Assert.That(quarantineReport.GetProperty("code").GetString(), Is.EqualTo("SCAN-INFECTED"));
        Assert.That(File.GetUnixFileMode(Path.Combine(d.QuarantineDir!, "report.json")) & UnixFileMode.UserWrite, Is.EqualTo((UnixFileMode)0), "quarantine is read-only");
    }

    [Test]
    public async Task A_zip_whose_member_clamd_skips_for_its_size_is_rejected_at_scan_as_unscannable()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("lib/plugins.zip", Pipeline.Tests.Checkup.Archives.TestArchives.Zip(
            ("plugin.bin", Pipeline.Tests.Checkup.Archives.TestArchives.NoisyEndingInEicar(SharedClamd.Limits.MaxFileSize + 1))));
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "scan", "SCAN-LIMIT-FILESIZE");
        Assert.That(d.Reason, Does.Contain("'lib/plugins.zip!plugin.bin'").And.Contain("MaxFileSize"));
    }

    [Test]
    public async Task A_lightweight_tag_is_rejected_at_fetch()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Commit("release");
        s.Supplier.LightweightTag("v1.0.0");
        s.Supplier.PushTo(s.SupplierBare);
        await RunRejected(s, "fetch", "FETCH-LIGHTWEIGHT-TAG");
    }

    [Test]
    public async Task A_release_tag_that_is_moved_later_is_a_security_event()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        Assert.That((await s.RunAsync()).Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));

        s.Supplier.Write("bin/app", "#!/bin/sh\necho other\n");
        s.Supplier.WriteChecksums();
        s.Supplier.Commit("sneaky");
        s.Supplier.SignedTag("v1.0.0", Harness.Signer, "moved", force: true);
        s.Supplier.PushTo(s.SupplierBare, force: true);
        var d = await RunRejected(s, "fetch", "FETCH-TAG-MOVED", imageAlreadyPushed: true);
        Assert.That(d.Reason, Does.StartWith("SECURITY:"));
        // Recorded once: the next pass does not raise it again.
        Assert.That((await s.RunAsync()).Deliveries, Is.Empty);
    }

    [Test]
    public async Task A_build_that_fails_while_the_scan_runs_fails_the_build_step_with_its_code_and_pushes_nothing()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        // The images are built ahead, during the scan: a base without the asked platform fails that build.
        s.Supplier.Write("delivery.yaml", $"""
            version: 1
            images:
              - name: app
                base: {Harness.BaseImage}
                platforms: [linux/arm64]
                files:
                  - from: bin
                    to: /opt/app
                entrypoint: [/opt/app/app]
                user: "10001:10001"
            """);
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "build", "BUILD-BASE-PLATFORM", imageAlreadyPushed: true);
        Assert.That(d.Reason, Does.Contain("linux/arm64"));
        Assert.That(d.Entries.Select(e => e.Record.Stage), Is.EqualTo(new[] { "fetch", "verify", "scan", "publish", "build" }),
            "recorded in the steps' order: the failure of the work ahead is the build step's");
        Assert.That(await RegistryHasRepository(s.RegistryRepository), Is.False, "no blob uploaded for a build that failed");
    }

    [Test]
    public async Task A_base_image_not_on_the_allow_list_is_rejected_before_anything_is_published()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery(baseImage: "pipeline-tests/base@sha256:" + new string('a', 64));
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "verify", "CFG-INVALID");
        Assert.That(d.Reason, Does.Contain("not on this pipeline's list of allowed base images"));
    }

    [Test]
    public async Task A_key_used_outside_its_certified_window_is_rejected_with_that_reason()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition(validUntil: "2021-01-01");
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var d = await RunRejected(s, "verify", "CHK-SIG-KEY-NOT-VALID");
        Assert.That(d.Reason, Does.Contain("certified only"));
    }

    private async Task<DeliveryReport> RunRejected(Scenario s, string stage, string code, bool imageAlreadyPushed = false)
    {
        var report = await s.RunAsync();
        var d = report.Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, code)), d.Reason);
        var last = d.Entries[^1].Record;
        Assert.That((last.Stage, last.Verdict, last.ReasonCode), Is.EqualTo((stage, Verdict.Failed, code)));
        Assert.That(d.Entries.Take(d.Entries.Count - 1).Select(e => e.Record.Verdict), Has.All.EqualTo(Verdict.Passed));
        Assert.That(d.Images, Is.Empty);
        if (!imageAlreadyPushed)
        {
            Assert.That(await RegistryHasRepository(s.RegistryRepository), Is.False, "a rejected delivery pushes nothing to the registry");
            // The images are built while the scan runs: whatever was built before the verdict stays on this machine.
            var local = Path.Combine(s.Root, "work", "blobs", "sha256");
            var built = Directory.Exists(local) ? Directory.EnumerateFiles(local).Select(f => "sha256:" + Path.GetFileName(f)).ToList() : [];
            Assert.That(await BlobsInRegistry(s.RegistryRepository, built), Is.Empty, "no layer built ahead of the verdict reaches the registry");
            Assert.That(Shell.Run("git", ["--git-dir", s.InternalBare, "tag"]).Stdout.Trim(), Is.Empty, "a rejected delivery is not published to VCS B");
        }

        return d;
    }

    /// <summary>
    /// Every statement (DSSE payload) attached to the image is valid against the in-toto/SLSA schemas and
    /// its predicate against our published schema (docs/attestations); the SBOM against SPDX 2.3.
    /// </summary>
    private async Task AssertAttachedDocumentsAreValid(string repository, string imageDigest)
    {
        using var client = new RegistryClient(RegistryEndpoint.Parse(Harness.Registry));
        var stages = new List<string>();
        var sboms = 0;
        foreach (var referrer in await client.ListReferrersAsync(repository, Digest.Parse(imageDigest)))
        {
            var manifest = ImageManifest.Parse((await client.GetManifestAsync(repository, referrer.Digest.ToString())).Bytes);
            foreach (var layer in manifest.Layers)
            {
                var blob = new MemoryStream();
                await client.GetBlobAsync(repository, layer.Digest, blob);
                if (referrer.ArtifactType == SpdxSbom.MediaType)
                {
                    JsonSchemas.AssertSpdx(blob.ToArray(), "attached SBOM");
                    sboms++;
                    continue;
                }

                Assert.That(referrer.ArtifactType, Is.EqualTo(DeliveryRunner.DsseArtifactType));
                using var envelope = JsonDocument.Parse(blob.ToArray());
                var payload = Convert.FromBase64String(envelope.RootElement.GetProperty("payload").GetString()!);
                JsonSchemas.AssertStatementAndPredicate(payload, "attached statement");
                using var statement = JsonDocument.Parse(payload);
                var type = statement.RootElement.GetProperty("predicateType").GetString()!;
                stages.Add(type == "https://slsa.dev/provenance/v1" ? "build" : type.Split('/')[^2]);
            }
        }

        Assert.That(sboms, Is.EqualTo(1), "one SBOM attached");
        Assert.That(stages, Is.SupersetOf(new[] { "fetch", "verify", "scan", "publish", "build" }), "a statement of each stage before the push is attached");
    }

    private async Task<List<string>> BlobsInRegistry(string repository, IEnumerable<string> digests)
    {
        using var http = new HttpClient();
        var found = new List<string>();
        foreach (var digest in digests)
        {
            using var r = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"http://{Harness.Registry}/v2/{repository}/blobs/{digest}"));
            if (r.StatusCode != HttpStatusCode.NotFound) found.Add(digest);
        }

        return found;
    }

    private async Task<bool> RegistryHasRepository(string repository)
    {
        using var http = new HttpClient();
        using var r = await http.GetAsync($"http://{Harness.Registry}/v2/{repository}/tags/list");
        return r.StatusCode != HttpStatusCode.NotFound;
    }
}
