using System.Text;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Lifecycle;

/// <summary>The canonical approval statement, signed with real ssh-keygen keys and checked with Checkup's verifier.</summary>
public class ApprovalSignatureTests
{
    private TempDir _dir = null!;
    private SshKey _anna = null!;
    private SshKey _mallory = null!;

    [OneTimeSetUp]
    public void Keys()
    {
        _dir = new TempDir("freigabe-keys-");
        _anna = SupplierRepo.NewKey(_dir.Combine("keys"), "anna");
        _mallory = SupplierRepo.NewKey(_dir.Combine("keys"), "mallory");
    }

    [OneTimeTearDown]
    public void Cleanup() => _dir.Dispose();

    private static ApprovalStatement Statement(string comment = "Abnahme bestanden – ok") => new(
        Guid.Parse("01938f4e-0000-7000-8000-000000000001"), "fachverfahren-a", "v1.4.2", "Vorprüfung", "Abnahme", "approve", "Anna Beispiel", null,
        ["sha256:" + new string('b', 64), "sha256:" + new string('a', 64)], "sha256:" + new string('c', 64), comment,
        DateTimeOffset.Parse("2026-12-01T10:00:00.987Z", System.Globalization.CultureInfo.InvariantCulture).ToUniversalTime() is var t ? ApprovalStatement.ToSeconds(t) : default);

    private Person Anna => new("Anna Beispiel", new HashSet<Role> { Role.Verfahrensverantwortlich }, ["*"], SshPublicKey.Parse(_anna.PublicKey), null);

    [Test]
    public void The_canonical_statement_is_sorted_compact_UTF8_and_round_trips()
    {
        var bytes = Statement().CanonicalBytes();
        Assert.That(Encoding.UTF8.GetString(bytes), Is.EqualTo(
            "{\"approver\":\"Anna Beispiel\",\"comment\":\"Abnahme bestanden – ok\",\"decision\":\"approve\",\"delivery\":\"01938f4e-0000-7000-8000-000000000001\"," +
            $"\"digests\":[\"sha256:{new string('a', 64)}\",\"sha256:{new string('b', 64)}\"],\"enteredBy\":null,\"fromStage\":\"Vorprüfung\",\"issuedAt\":\"2026-12-01T10:00:00Z\"," +
            $"\"pipeline\":\"fachverfahren-a\",\"stageResult\":\"sha256:{new string('c', 64)}\",\"tag\":\"v1.4.2\",\"toStage\":\"Abnahme\",\"type\":\"https://pipeline.example/freigabe/v1\"}}"));
        Assert.That(ApprovalStatement.Parse(bytes).CanonicalBytes(), Is.EqualTo(bytes));
        var pretty = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bytes).Replace(",", ", ", StringComparison.Ordinal));
        var e = Assert.Throws<Pipeline.Engine.PipelineException>(() => ApprovalStatement.Parse(pretty))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("LC-STATEMENT-MISMATCH", "the signed statement is not in canonical form (print it with 'pipeline approval-statement' and sign those bytes unchanged)")));
    }

    [Test]
    public void An_ssh_keygen_signature_by_the_approver_verifies()
    {
        var bytes = Statement().CanonicalBytes();
        var sig = LifecycleCommands.SshSign(bytes, _anna.PrivateKeyPath);
        Assert.That(ApprovalSignatures.Verify(bytes, sig, Anna, TimeProvider.System), Is.EqualTo("ssh " + SshPublicKey.Parse(_anna.PublicKey).Fingerprint));
    }

    [Test]
    public void Another_key_a_changed_statement_or_another_namespace_is_refused_naming_the_cause()
    {
        var bytes = Statement().CanonicalBytes();
        var forged = LifecycleCommands.SshSign(bytes, _mallory.PrivateKeyPath);
        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(bytes, forged, Anna, TimeProvider.System), "LC-SIGNATURE-INVALID", "CHK-SSH-005 The signing key");

        var good = LifecycleCommands.SshSign(bytes, _anna.PrivateKeyPath);
        var changed = Statement("Abnahme bestanden – ok!").CanonicalBytes();
        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(changed, good, Anna, TimeProvider.System), "LC-SIGNATURE-INVALID", "CHK-SSH-006");

        var file = _dir.Combine("statement.json");
        File.WriteAllBytes(file, bytes);
        Shell.Run("ssh-keygen", ["-q", "-Y", "sign", "-n", "git", "-f", _anna.PrivateKeyPath, file]).EnsureSuccess("sign");
        var gitSig = File.ReadAllText(file + ".sig");
        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(bytes, gitSig, Anna, TimeProvider.System), "LC-SIGNATURE-INVALID", "CHK-SSH-003 The signature is for namespace 'git'");

        ApprovalRulesTests.AssertCode(() => _ = ApprovalSignatures.Verify(bytes, good, Anna with { SshKey = null }, TimeProvider.System), "LC-NO-PERSONAL-KEY", "lists no sshKey for Anna Beispiel");
    }

    [Test]
    public void An_auditor_checks_the_embedded_human_signature_offline_and_sees_a_forged_one()
    {
        var st = Statement();
        var bytes = st.CanonicalBytes();
        var delivery = new DeliveryLifecycle(st.DeliveryId, st.Pipeline, st.Tag, LifecycleState.AwaitingApproval, 0, "Vorprüfung", "Abnahme",
            new StageResult("Vorprüfung", "promoted", st.StageResult, st.IssuedAt), st.Digests.Select(d => new DeliveryImage("reg", "vorpruefung/app", d)).ToList(), null, null, 1, st.IssuedAt);
        var fp = "ssh " + SshPublicKey.Parse(_anna.PublicKey).Fingerprint;
        Pipeline.Engine.Attestations.InTotoStatement Attest(string signature) => LifecycleAttestations.Build("freigabe:Abnahme", LifecycleAttestations.FreigabeType, true, delivery,
            delivery.Images, "", "Anna Beispiel", null, null, new Dictionary<string, string>(), (bytes, signature, fp, _anna.PublicKey), st.IssuedAt).Statement;

        var good = Pipeline.Engine.Audit.FreigabeEvidence.Check(Attest(LifecycleCommands.SshSign(bytes, _anna.PrivateKeyPath)))!;
        Assert.That((good.Ok, good.Signed, good.Approver, good.Key), Is.EqualTo((true, true, "Anna Beispiel", fp)));
        var forged = Pipeline.Engine.Audit.FreigabeEvidence.Check(Attest(LifecycleCommands.SshSign(bytes, _mallory.PrivateKeyPath)))!;
        Assert.That(forged.Ok, Is.False);
        Assert.That(forged.Problem, Does.StartWith("FREIGABE-SIGNATURE: CHK-SSH-005"));
    }
}
