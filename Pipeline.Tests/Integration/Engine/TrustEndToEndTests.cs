using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// The trust decision inside whole deliveries: OpenPGP and SSH certified senders, key rotation
/// and revocation, tag restrictions, rollback, signed commits, and detached or Sigstore signatures
/// on the checksum manifest. Each rejection is asserted by its code and reason, and the ledger
/// records the failed check with the evidence of the checks before it.
/// </summary>
public class TrustEndToEndTests : DeliveryFixture
{
    private string SshSigner(string name, SshKey key, string extra = "") => $"""
          - name: {name}
            organisation: Test Supplier GmbH
            sshKey: {key.PublicKey}
        {extra}
        """;

    [Test]
    public async Task An_openpgp_signed_tag_by_a_certified_sender_is_accepted()
    {
        var s = Harness.NewScenario();
        var gpg = GpgKey.Create(Path.Combine(s.Root, "gnupg"));
        s.WriteDefinitionWith($"""
              - name: OpenPGP Release Key
                organisation: Test Supplier GmbH
                openpgpKey: {gpg.YamlBlock(6)}
                fingerprint: {gpg.Fingerprint}
            """);
        s.WriteGoodDelivery();
        s.Supplier.Commit("release");
        gpg.SignTag(s.Supplier.WorkTree, "v1.0.0");
        s.Supplier.PushTo(s.SupplierBare);

        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), d.Reason);
        var verify = d.Entries.Single(e => e.Record.Stage == "verify").Record.Evidence;
        Assert.That((verify["signer"], verify["signatureMethod"]), Is.EqualTo(("OpenPGP Release Key", "openpgp-tag")));
        Assert.That(verify["signerKey"], Is.EqualTo(gpg.Fingerprint));
    }

    [Test]
    public async Task After_a_key_rotation_old_and_new_keys_are_accepted_side_by_side()
    {
        var s = Harness.NewScenario();
        var newKey = SupplierRepo.NewKey(s.Root, "new");
        s.WriteDefinitionWith(SshSigner("Old Key", Harness.Signer) + SshSigner("New Key", newKey));
        s.WriteGoodDelivery("1.0.0");
        s.Publish("v1.0.0", Harness.Signer);
        s.WriteGoodDelivery("1.1.0");
        s.Publish("v1.1.0", newKey);

        var report = await s.RunAsync();
        Assert.That(report.Deliveries.Select(d => (d.Tag, d.Status)), Is.EqualTo(new[] { ("v1.0.0", DeliveryStatus.Accepted), ("v1.1.0", DeliveryStatus.Accepted) }));
        Assert.That(report.Deliveries.Select(d => d.Entries[1].Record.Evidence["signer"]), Is.EqualTo(new[] { "Old Key", "New Key" }));
    }

    [Test]
    public async Task A_revoked_key_fails_even_for_an_old_tag_and_says_it_was_revoked()
    {
        var s = Harness.NewScenario();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        s.WriteDefinitionWith(SshSigner("Revoked Key", Harness.Signer, """
                revoked:
                  at: 2026-06-01
                  reason: private key leaked
            """));
        var d = await Rejected(s, "verify", "CHK-SIG-REVOKED");
        Assert.That(d.Reason, Does.Contain("was revoked on 2026-06-01 (private key leaked)"));
    }

    [Test]
    public async Task A_key_limited_to_some_tags_cannot_sign_others()
    {
        var s = Harness.NewScenario();
        s.WriteDefinitionWith(SshSigner("Hotfix Key", Harness.Signer, """
                tags: ['^v9\.']
            """));
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var d = await Rejected(s, "verify", "CHK-SIG-TAG-NOT-ALLOWED");
        Assert.That(d.Reason, Does.Contain("may sign only tags matching ^v9\\."));
    }

    [Test]
    public async Task A_lower_version_after_a_higher_one_is_a_rollback_unless_allowed()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery("2.0.0");
        s.Publish("v2.0.0");
        Assert.That((await s.RunAsync()).Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));

        s.WriteGoodDelivery("1.5.0");
        s.Publish("v1.5.0");
        var d = await Rejected(s, "verify", "CHK-ROLLBACK", pushedBefore: true);
        Assert.That(d.Reason, Does.Contain("'v1.5.0' is a lower version than 'v2.0.0'"));

        // The operator can allow it explicitly, for a new tag.
        s.WriteDefinitionWith(SshSigner("Certified Release Key", Harness.Signer), "trust:\n  allowDowngrade: true");
        s.WriteGoodDelivery("1.5.1");
        s.Publish("v1.5.1");
        var allowed = (await s.RunAsync()).Deliveries.Single();
        Assert.That((allowed.Tag, allowed.Status), Is.EqualTo(("v1.5.1", DeliveryStatus.Accepted)), allowed.Reason);
    }

    [Test]
    public async Task A_signed_commit_behind_an_unsigned_tag_counts_only_where_the_pipeline_asks_for_it()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        Shell.Git(s.Supplier.WorkTree, "add", "-A").EnsureSuccess("add");
        Shell.Run("git", ["-c", "gpg.format=ssh", "-c", "user.signingkey=" + Harness.Signer.PublicKeyPath, "commit", "-q", "-S", "-m", "signed release"], s.Supplier.WorkTree).EnsureSuccess("commit -S");
        s.Supplier.AnnotatedUnsignedTag("v1.0.0");
        s.Supplier.PushTo(s.SupplierBare);

        var d = await Rejected(s, "verify", "CHK-SIG-UNSIGNED");
        Assert.That(d.Reason, Does.Contain("is not signed"));

        var t = Harness.NewScenario();
        t.WriteDefinitionWith(SshSigner("Certified Release Key", Harness.Signer), "trust:\n  acceptSignedCommits: true");
        Shell.Run("git", ["push", "-q", t.SupplierBare, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"], s.Supplier.WorkTree).EnsureSuccess("push copy");
        var ok = (await t.RunAsync()).Deliveries.Single();
        Assert.That(ok.Status, Is.EqualTo(DeliveryStatus.Accepted), ok.Reason);
        Assert.That(ok.Entries[1].Record.Evidence["signatureMethod"], Is.EqualTo("ssh-commit"));
    }

    [Test]
    public async Task A_detached_manifest_signature_is_required_and_checked_when_the_pipeline_says_so()
    {
        var s = Harness.NewScenario();
        s.WriteDefinitionWith(SshSigner("Certified Release Key", Harness.Signer), "checksums:\n  manifest: SHA256SUMS\n  signature: detached");
        s.WriteGoodDelivery();
        Shell.Run("ssh-keygen", ["-Y", "sign", "-n", "file", "-f", Harness.Signer.PrivateKeyPath, Path.Combine(s.Supplier.WorkTree, "SHA256SUMS")]).EnsureSuccess("ssh-keygen -Y sign");
        s.Publish("v1.0.0");
        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), d.Reason);
        Assert.That(d.Entries[1].Record.Evidence["manifestSigner"], Is.EqualTo("Certified Release Key"));

        // The same delivery without the signature file is rejected, naming what is missing.
        var t = Harness.NewScenario();
        t.WriteDefinitionWith(SshSigner("Certified Release Key", Harness.Signer), "checksums:\n  manifest: SHA256SUMS\n  signature: detached");
        t.WriteGoodDelivery();
        t.Publish("v1.0.0");
        var r = await Rejected(t, "verify", "CHK-MANIFEST-UNSIGNED");
        Assert.That(r.Reason, Does.Contain("SHA256SUMS.sig"));
    }

    [Test]
    public async Task A_rejected_delivery_records_the_failed_check_and_the_evidence_of_the_checks_before_it()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("bin/app", "tampered after the checksums were written");
        s.Publish("v1.0.0");
        var d = await Rejected(s, "verify", "CHK-SUM-025");
        var evidence = d.Entries[^1].Record.Evidence;
        Assert.That(evidence["failedCheck"], Is.EqualTo("CHK-SUM-025"));
        Assert.That(evidence["signer"], Is.EqualTo("Certified Release Key"), "the signature check passed before the checksum check failed");
        Assert.That(evidence["signerKey"], Does.StartWith("SHA256:"));
        Assert.That(evidence["manifestDigest"], Is.EqualTo(Sha256Of(s, "SHA256SUMS")), "the signed evidence names the manifest that was examined");
        Assert.That(evidence, Does.Not.ContainKey("deliveryManifestDigest"), "delivery.yaml was not examined");
    }

    [Test]
    public async Task A_delivery_rejected_for_its_delivery_yaml_names_the_digests_of_what_was_examined()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Supplier.Write("delivery.yaml", "version: 2\nimages: []\n");
        s.Supplier.WriteChecksums();
        s.Publish("v1.0.0");
        var d = await Rejected(s, "verify", "CFG-INVALID");
        var evidence = d.Entries[^1].Record.Evidence;
        Assert.That(evidence["manifestDigest"], Is.EqualTo(Sha256Of(s, "SHA256SUMS")));
        Assert.That(evidence["deliveryManifestDigest"], Is.EqualTo(Sha256Of(s, "delivery.yaml")));
    }

    private static string Sha256Of(Scenario s, string file) =>
        "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(Path.Combine(s.Supplier.WorkTree, file))));

    [Test]
    public async Task A_sigstore_bundle_over_the_manifest_is_verified_offline_against_the_operators_root()
    {
        var mock = SigstoreMockSigner.TryCreate();
        if (mock is null) return;
        var s = Harness.NewScenario();
        s.WriteGoodDelivery();
        var signed = mock.Sign(Path.Combine(s.Supplier.WorkTree, "SHA256SUMS"), Path.Combine(s.Root, "sigstore"));
        File.Copy(signed.Bundle, Path.Combine(s.Supplier.WorkTree, "SHA256SUMS.sigstore.json"));
        string Settings(string identity) => $"""
            checksums:
              manifest: SHA256SUMS
              signature: sigstore
              sigstore:
                identity: {identity}
                issuer: {signed.Issuer}
                trustedRoot: {signed.TrustedRoot}
            """;
        s.WriteDefinitionWith(SshSigner("Certified Release Key", Harness.Signer), Settings(signed.Identity));
        s.Publish("v1.0.0");
        var d = (await s.RunAsync()).Deliveries.Single();
        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), d.Reason);
        Assert.That(d.Entries[1].Record.Evidence["sigstoreIdentity"], Is.EqualTo(signed.Identity));

        // A pipeline that expects another signer identity rejects the same delivery.
        var t = Harness.NewScenario();
        t.WriteDefinitionWith(SshSigner("Certified Release Key", Harness.Signer), Settings("https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main"));
        Shell.Run("git", ["push", "-q", t.SupplierBare, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"], s.Supplier.WorkTree).EnsureSuccess("push copy");
        var r = await Rejected(t, "verify", "SIG-SIGSTORE-IDENTITY");
        Assert.That(r.Reason, Does.Contain("someone/else"));
    }

    private async Task<DeliveryReport> Rejected(Scenario s, string stage, string code, bool pushedBefore = false)
    {
        var report = await s.RunAsync();
        var d = report.Deliveries.Single();
        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, code)), d.Reason);
        var last = d.Entries[^1].Record;
        Assert.That((last.Stage, last.Verdict, last.ReasonCode, last.Evidence["failedCheck"]), Is.EqualTo((stage, Verdict.Failed, code, code)));
        if (!pushedBefore)
            Assert.That(Shell.Run("git", ["--git-dir", s.InternalBare, "tag"]).Stdout.Trim(), Is.Empty, "nothing reaches VCS B");
        return d;
    }
}
