using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>
/// Hostile deliveries that point at an attack are rejected with their own code and logged as
/// <c>SECURITY EVENT</c> (real git server, database and engine; the log is captured).
/// </summary>
public class SecurityEventTests : DeliveryFixture
{
    [Test]
    public async Task A_signed_tag_republished_under_another_name_is_a_replay_and_a_security_event()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var tagObject = Shell.Git(s.Supplier.WorkTree, "rev-parse", "v1.0.0").Stdout.Trim();
        // The supplier (or someone with write access to VCS A) points a new version at the old signed tag object.
        Shell.Git(s.Supplier.WorkTree, "update-ref", "refs/tags/v2.0.0", tagObject).EnsureSuccess("update-ref");
        s.Supplier.PushTo(s.SupplierBare);
        var sink = new CapturingSink();

        var report = await s.RunAsync(sink.Logger());

        Assert.That(report.Deliveries.Select(d => (d.Tag, d.Status)), Is.EqualTo(new[] { ("v1.0.0", DeliveryStatus.Accepted), ("v2.0.0", DeliveryStatus.Rejected) }));
        var replay = report.Deliveries[1];
        Assert.That(replay.ReasonCode, Is.EqualTo("FETCH-TAG-REPLAYED"), replay.Reason);
        Assert.That(replay.Entries[^1].Record.Stage, Is.EqualTo("fetch"));
        Assert.That(replay.Reason, Does.StartWith("SECURITY:").And.Contain("replay").And.Contain(tagObject).And.Contain("signed as tag 'v1.0.0'").And.Contain("'v1.0.0'"));
        Assert.That(sink.Lines, Has.Some.Contains("SECURITY EVENT \"FETCH-TAG-REPLAYED\"").And.Contains("v2.0.0"));
        Assert.That(Shell.Run("git", ["--git-dir", s.InternalBare, "tag"]).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[] { "v1.0.0" }), "the replay is not published");
    }

    [Test]
    public async Task A_symlink_in_a_delivery_is_rejected_as_a_security_event()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        File.CreateSymbolicLink(Path.Combine(s.Supplier.WorkTree, "bin", "passwd"), "/etc/passwd");
        s.Publish("v1.0.0");
        var sink = new CapturingSink();

        var d = (await s.RunAsync(sink.Logger())).Deliveries.Single();

        Assert.That((d.Status, d.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, "FETCH-SYMLINK")), d.Reason);
        Assert.That(d.Reason, Does.Contain("'bin/passwd' is a symbolic link"));
        Assert.That(sink.Lines, Has.Some.Contains("SECURITY EVENT \"FETCH-SYMLINK\"").And.Contains("bin/passwd"));
    }

    [Test]
    public async Task A_checkpoint_the_engine_refuses_to_sign_is_a_security_event_with_its_code()
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        Assert.That((await s.RunAsync()).Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted));

        // The checkpoint folder says this engine once signed a larger log than the database now holds
        // (as after entries were cut from the database): the engine must not sign over it.
        var settings = Pipeline.Engine.Configuration.EngineSettingsLoader.Load(s.ConfigPath);
        var latest = Path.Combine(settings.Ledger.CheckpointDir!, CheckpointSigner.LatestFile);
        var kept = File.ReadAllText(latest);
        var keptSize = long.Parse(kept.Split('\n')[1], System.Globalization.CultureInfo.InvariantCulture);
        using (var key = Pipeline.Engine.Attestations.EngineSigningKey.FromPemFile(settings.Attestation?.SigningKeyFile ?? Path.Combine(settings.WorkDir, "keys", "engine-attestation.pem")))
            File.WriteAllText(latest, CheckpointNote.Sign(settings.Ledger.Origin, keptSize + 100, new byte[32], key));
        s.WriteGoodDelivery("1.0.1");
        s.Publish("v1.0.1");
        var sink = new CapturingSink();

        var d = (await s.RunAsync(sink.Logger())).Deliveries.Single();

        Assert.That(d.Status, Is.EqualTo(DeliveryStatus.Accepted), "the delivery itself is fine");
        Assert.That(sink.Lines, Has.Some.Contains("SECURITY EVENT \"LOG-CHECKPOINT-REGRESSED\"").And.Contains("refused to sign a ledger checkpoint")
            .And.Contains($"last signed a checkpoint at size {keptSize + 100}"));
        Assert.That(sink.Lines, Has.None.Contains("Ledger checkpoint signed"), "nothing was signed");
    }

    [Test]
    public void Only_attacks_are_security_events()
    {
        Assert.That(new[] { "FETCH-TAG-REPLAYED", "FETCH-SYMLINK", "FETCH-TAG-MOVED", "FETCH-UNSAFE-PATH", "CHK-ROLLBACK" }.Where(c => !DeliveryRunner.IsSecurityEvent(c)), Is.Empty);
        Assert.That(new[] { "FETCH-LIGHTWEIGHT-TAG", "CHK-SUM-025", "VCS-FETCH", "CHK-AV-005" }.Where(DeliveryRunner.IsSecurityEvent), Is.Empty);
    }
}
