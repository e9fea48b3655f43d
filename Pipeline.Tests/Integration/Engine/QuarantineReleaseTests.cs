using Pipeline.Engine.Cli;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Quarantine;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>A released quarantined delivery is processed again by the next pass, with every check applied again.</summary>
public class QuarantineReleaseTests : DeliveryFixture
{
    [Test]
    public async Task A_released_delivery_is_processed_again_by_the_next_pass_and_accepted_once_when_its_cause_is_fixed()
    {
        var s = Harness.NewScenario();
        var newKey = SupplierRepo.NewKey(s.Root, "rotated");
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0", newKey); // signed with a key the operator has not entered yet
        var rejected = (await s.RunAsync()).Deliveries.Single();
        Assert.That((rejected.Status, rejected.ReasonCode), Is.EqualTo((DeliveryStatus.Rejected, "CHK-SSH-005")));
        Assert.That((await s.RunAsync()).Skipped, Is.EqualTo(new[] { "v1.0.0" }), "a rejection is final until released");

        s.WriteDefinition(signerKey: newKey.PublicKey); // the operator adds the supplier's new key
        var ledger = new LedgerStore(Harness.Database.DataSource(), TimeProvider.System);
        await QuarantineCommands.ReleaseAsync(new QuarantineStore(Path.Combine(s.Root, "work"), TimeProvider.System), ledger, rejected.DeliveryId,
            "Erika Mustermann", "supplier rotated its release key", default);

        var again = (await s.RunAsync()).Deliveries.Single();
        Assert.That((again.Status, again.Attempt), Is.EqualTo((DeliveryStatus.Accepted, 2)), $"{again.ReasonCode} {again.Reason}");
        var rows = await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default);
        Assert.That(rows.Select(r => r.Status), Is.EqualTo(new[] { DeliveryStatus.Retried, DeliveryStatus.Accepted }));
        Assert.That((await ledger.ReadAsync(rejected.DeliveryId, default)).Select(e => e.Record.Stage), Has.Member(QuarantineCommands.ReleaseStage));
        Assert.That((await s.RunAsync()).Deliveries, Is.Empty, "accepted exactly once");
    }
}
