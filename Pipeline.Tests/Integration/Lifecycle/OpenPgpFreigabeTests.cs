using System.Text;
using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Engine.Lifecycle;
using Pipeline.Tests.Integration.Checkup.OpenPgp;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// Freigaben signed with OpenPGP (gpg-generated keys, detached armored signatures): accepted with
/// the approver's own key, cross-checked with gpgv; another person's key, an altered statement, a
/// key expired at signing time and a revoked key are refused with LC-SIGNATURE-INVALID and the
/// Checkup code naming the cause. End to end through <c>pipeline approve --statement --signature</c>,
/// the signature is kept in the log and verifies offline.
/// </summary>
public class OpenPgpFreigabeTests : DeliveryFixture
{
    private GpgLab _lab = null!;
    private string _ben = null!, _mallory = null!, _expired = null!, _revoked = null!;
    private string _sigExpired = null!, _sigRevoked = null!;

    private static readonly byte[] Payload = new ApprovalStatement(Guid.Parse("01938f4e-0000-7000-8000-000000000002"), "fachverfahren-a", "v1.4.2", "Abnahme",
        "Schulung", "approve", "Ben Berger", null, ["sha256:" + new string('a', 64)], "sha256:" + new string('c', 64), "Schulung frei",
        new DateTimeOffset(2026, 12, 1, 10, 0, 0, TimeSpan.Zero)).CanonicalBytes();

    [OneTimeSetUp]
    public void Keys()
    {
        _lab = new GpgLab();
        _ben = _lab.GenKey("Ben Berger <ben@behoerde.example>", "ed25519");
        _mallory = _lab.GenKey("Mallory <mallory@evil.example>", "ed25519");
        // Created 2020 without expiry, signs now, then (as of mid-2020) given an expiry of mid-2021: expired at signing.
        _expired = _lab.GenKey("Expired Ben <expired@behoerde.example>", "ed25519", "never", "20200101T000000");
        _sigExpired = DetachSign(Payload, _expired);
        _lab.SetExpire(_expired, "1y", "20200601T000000");
        _revoked = _lab.GenKey("Revoked Ben <revoked@behoerde.example>", "ed25519");
        _sigRevoked = DetachSign(Payload, _revoked);
        _lab.Revoke(_revoked);
    }

    [OneTimeTearDown]
    public void Cleanup() => _lab.Dispose();

    /// <summary><c>gpg --armor --detach-sign</c> with exactly the key <paramref name="fpr"/>.</summary>
    private string DetachSign(byte[] payload, string fpr)
    {
        var file = Path.Combine(_lab.Dir, Guid.NewGuid().ToString("N") + ".json");
        File.WriteAllBytes(file, payload);
        var r = Shell.RunBytes("gpg", ["--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--local-user", fpr + "!", "--armor", "--detach-sign", "--output", file + ".asc", file],
            _lab.Dir, null, new Dictionary<string, string> { ["GNUPGHOME"] = _lab.SignHome, ["HOME"] = _lab.Dir });
        Assert.That(r.Exit, Is.Zero, r.Stderr);
        return File.ReadAllText(file + ".asc");
    }

    private Person Ben(string fpr)
    {
        var armored = _lab.ExportArmored(fpr);
        return new Person("Ben Berger", new HashSet<Role> { Role.Verfahrensverantwortlich }, ["*"], null, OpenPgpPublicKeyRing.Parse(armored)) { OpenPgpKeyText = armored };
    }

    [Test]
    public void The_approvers_own_OpenPGP_signature_verifies_and_gpgv_agrees()
    {
        var sig = DetachSign(Payload, _ben);
        var key = ApprovalSignatures.Verify(Payload, sig, Ben(_ben), TimeProvider.System);
        Assert.That(key, Is.EqualTo("openpgp " + _ben).IgnoreCase);
        var gpgv = _lab.Gpgv(Payload, Encoding.ASCII.GetBytes(sig), _ben);
        Assert.That(gpgv.Exit, Is.Zero, gpgv.Output);
        Assert.That(gpgv.Output, Does.Contain("[GNUPG:] VALIDSIG " + _ben));
    }

    [Test]
    public void Another_key_an_altered_statement_an_expired_or_a_revoked_key_is_refused_with_its_code()
    {
        var forged = DetachSign(Payload, _mallory);
        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(Payload, forged, Ben(_ben), TimeProvider.System), "LC-SIGNATURE-INVALID",
            $"is not Ben Berger's signature over this approval statement: {OpenPgpErrors.UnknownSigner}");
        Assert.That(_lab.Gpgv(Payload, Encoding.ASCII.GetBytes(forged), _ben).Exit, Is.Not.Zero, "gpgv: no public key for the signer");

        var good = DetachSign(Payload, _ben);
        var altered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(Payload).Replace("Schulung frei", "Schulung frei!", StringComparison.Ordinal));
        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(altered, good, Ben(_ben), TimeProvider.System), "LC-SIGNATURE-INVALID", OpenPgpErrors.InvalidSignature);
        var bad = _lab.Gpgv(altered, Encoding.ASCII.GetBytes(good), _ben);
        Assert.That((bad.Exit != 0, bad.Output.Contains("[GNUPG:] BADSIG", StringComparison.Ordinal)), Is.EqualTo((true, true)), bad.Output);

        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(Payload, _sigExpired, Ben(_expired), TimeProvider.System), "LC-SIGNATURE-INVALID",
            OpenPgpErrors.KeyExpired);
        Assert.That(_lab.Gpgv(Payload, Encoding.ASCII.GetBytes(_sigExpired), _expired).Output, Does.Contain("[GNUPG:] EXPKEYSIG"), "gpgv sees the expired key too");

        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(Payload, _sigRevoked, Ben(_revoked), TimeProvider.System), "LC-SIGNATURE-INVALID",
            OpenPgpErrors.KeyRevoked);
        Assert.That(_lab.Gpgv(Payload, Encoding.ASCII.GetBytes(_sigRevoked), _revoked).Output, Does.Contain("[GNUPG:] REVKEYSIG"), "gpgv sees the revocation too");

        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(Payload, good, Ben(_ben) with { OpenPgpKey = null }, TimeProvider.System), "LC-NO-PERSONAL-KEY",
            "lists no openpgpKey for Ben Berger");
    }

    [Test]
    public async Task An_OpenPGP_signed_Freigabe_through_the_CLI_is_kept_in_the_log_and_verifies_offline()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        var people = Path.Combine(s.Root, "people.yaml");
        File.WriteAllText(Path.Combine(s.Root, "ben.asc"), _lab.ExportArmored(_ben));
        File.WriteAllText(people, File.ReadAllText(people).Replace("  - name: Ben Berger\n    roles: [verfahrensverantwortlich]\n",
            "  - name: Ben Berger\n    roles: [verfahrensverantwortlich]\n    openpgpKeyFile: ben.asc\n", StringComparison.Ordinal));
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var report = (await s.RunAsync()).Deliveries.Single();
        Assert.That(report.Status, Is.EqualTo(DeliveryStatus.Accepted), report.Reason);
        var id = report.DeliveryId;
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        await engine.Lifecycle.RequestPromotionAsync(As(engine, "sam"), id, "Abnahme", default);

        async Task<(int Rc, string Out, string Err)> Cli(params string[] args)
        {
            var o = new StringWriter();
            var e = new StringWriter();
            var rc = await PipelineCli.RunAsync(args, o, e);
            return (rc, o.ToString(), e.ToString());
        }

        var (rc, statement, err) = await Cli("approval-statement", id.ToString(), "--stage", "Abnahme", "--comment", "Abnahme ok", "--token-file", sc.TokenFile("ben"),
            "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        var statementFile = Path.Combine(s.Root, "statement.json");
        File.WriteAllText(statementFile, statement);
        var statementBytes = File.ReadAllBytes(statementFile);

        // Mallory's signature over the right bytes: refused, nothing recorded.
        var forgedFile = statementFile + ".forged.asc";
        File.WriteAllText(forgedFile, DetachSign(statementBytes, _mallory));
        (rc, _, err) = await Cli("approve", id.ToString(), "--stage", "Abnahme", "--comment", "Abnahme ok", "--statement", statementFile, "--signature", forgedFile,
            "--token-file", sc.TokenFile("ben"), "--config", s.ConfigPath);
        Assert.That(rc, Is.Not.EqualTo(0));
        Assert.That(err, Does.Contain("LC-SIGNATURE-INVALID").And.Contain(OpenPgpErrors.UnknownSigner));
        Assert.That(await engine.Lifecycle.GetApprovalsAsync(As(engine, "sam"), id, default), Is.Empty);

        var sigFile = statementFile + ".asc";
        File.WriteAllText(sigFile, DetachSign(statementBytes, _ben));
        (rc, var output, err) = await Cli("approve", id.ToString(), "--stage", "Abnahme", "--comment", "Abnahme ok", "--statement", statementFile, "--signature", sigFile,
            "--token-file", sc.TokenFile("ben"), "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("Freigabe into Abnahme by Ben Berger, signed openpgp ").IgnoreCase);
        var approval = (await engine.Lifecycle.GetApprovalsAsync(As(engine, "sam"), id, default)).Single();
        Assert.That(approval.SignatureKey, Is.EqualTo("openpgp " + _ben).IgnoreCase);

        var leaf = (await engine.Ledger.Log.GetLeafAsync(approval.LogIndex!.Value, default))!;
        var check = FreigabeEvidence.Check(InTotoStatement.Parse(DsseEnvelope.Parse(leaf.Envelope).Payload))!;
        Assert.That((check.Ok, check.Signed, check.Approver), Is.EqualTo((true, true, "Ben Berger")), check.Problem);
        Assert.That(check.Key, Is.EqualTo("openpgp " + _ben).IgnoreCase);
        (rc, output, err) = await Cli("audit", "verify", "--config", s.ConfigPath);
        Assert.That(rc, Is.EqualTo(0), err + output);
    }
}
