using Pipeline.Engine.Approvals;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Checkup.Scanning;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>An expired signed Freigabe, a superseded and a withdrawn delivery, each refused with its code; the engine's clock is moved by hand.</summary>
public class LifecycleClosingTests : DeliveryFixture
{
    [Test]
    public async Task Expired_superseded_and_withdrawn_are_refused_and_void_their_approvals()
    {
        var sc = new LifecycleScenario(Harness);
        var s = sc.S;
        var time = new ManualTime(DateTimeOffset.UtcNow);
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, time, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var (sam, anna, ben) = (As(engine, "sam"), As(engine, "anna"), As(engine, "ben"));

        s.WriteGoodDelivery("1.0.0");
        s.Publish("v1.0.0");
        var first = (await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries.Single();
        Assert.That(first.Status, Is.EqualTo(DeliveryStatus.Accepted), first.Reason);
        var id = first.DeliveryId;
        await lc.RequestPromotionAsync(sam, id, "Abnahme", default);

        // A Freigabe signed now but handed in after its 72 hours.
        var input = new ApprovalInput(id, "Abnahme", null, null, null, null);
        var statement = await lc.ApprovalStatementAsync(anna, input, ApprovalDecision.Approve, default);
        var sig = LifecycleCommands.SshSign(statement.CanonicalBytes(), sc.AnnaKey.PrivateKeyPath);
        time.Advance(TimeSpan.FromHours(73));
        await AssertRefused(() => lc.ApproveAsync(anna, input with { Signature = new SignedApproval(statement.CanonicalBytes(), sig) }, default),
            "LC-APPROVAL-EXPIRED", "expired at " + ApprovalStatement.Time(statement.IssuedAt + TimeSpan.FromHours(72)) + " (stage Abnahme: valid 72h)");

        // A refusal needs a comment.
        await AssertRefused(() => lc.RejectAsync(ben, input, default), "LC-COMMENT-REQUIRED", "a refusal needs a comment");

        // A newer version supersedes the older one still on its way; its pending request is void.
        s.WriteGoodDelivery("1.0.1");
        s.Publish("v1.0.1");
        var second = (await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries.Single();
        Assert.That(second.Status, Is.EqualTo(DeliveryStatus.Accepted), second.Reason);
        var old = await lc.GetAsync(sam, id, default);
        Assert.That((old.State, old.ReasonCode, old.Reason), Is.EqualTo((LifecycleState.Superseded, "LC-SUPERSEDED", $"superseded by v1.0.1 (delivery {second.DeliveryId})")));
        await AssertRefused(() => lc.ApproveAsync(anna, input, default), "LC-DELIVERY-SUPERSEDED", "was superseded (superseded by v1.0.1");
        Assert.That((await lc.GetHistoryAsync(sam, id, default)).Last().Step, Is.EqualTo("supersession"));

        // Rücknahme of the newer one, from Vorprüfung, with a reason.
        await AssertRefused(() => lc.WithdrawAsync(ben, second.DeliveryId, " ", default), "LC-COMMENT-REQUIRED", "a Rücknahme needs a reason");
        var withdrawn = await lc.WithdrawAsync(ben, second.DeliveryId, "Fehler im Installationshandbuch", default);
        Assert.That((withdrawn.State, withdrawn.Stage, withdrawn.Reason), Is.EqualTo((LifecycleState.Withdrawn, "Vorprüfung", "withdrawn by Ben Berger: Fehler im Installationshandbuch")));
        await AssertRefused(() => lc.RequestPromotionAsync(sam, second.DeliveryId, "Abnahme", default), "LC-DELIVERY-WITHDRAWN", "was withdrawn (withdrawn by Ben Berger: Fehler im Installationshandbuch)");
        await AssertRefused(() => lc.WithdrawAsync(sam, second.DeliveryId, "again", default), "LC-DELIVERY-WITHDRAWN", "was withdrawn");

        var board = await lc.GetBoardAsync(sam, s.Name, default);
        Assert.That(board.Pipelines.Single().Deliveries.Select(e => (e.Delivery.Tag, e.Delivery.State)),
            Is.EqualTo(new[] { ("v1.0.1", LifecycleState.Withdrawn), ("v1.0.0", LifecycleState.Superseded) }));
        var audit = await engine.Audit.VerifyLogAsync(null, default);
        Assert.That(audit.Ok, Is.True, string.Join("\n", audit.Problems));
    }
}
