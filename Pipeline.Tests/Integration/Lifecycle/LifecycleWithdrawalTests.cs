using Pipeline.Engine.Approvals;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Lifecycle;
using Pipeline.Engine.Notifications;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Lifecycle.LifecycleScenario;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// Rücknahme from Produktion and from a stage with an open, half-approved request, against the
/// real registry (checked with skopeo): the stage tags go back to the previous version or away,
/// the withdrawn image leaves the stage repositories, open approvals become void, and the signed
/// withdrawal statement says who, why and what happened to which tag.
/// </summary>
public class LifecycleWithdrawalTests : DeliveryFixture
{
    private const string Path3 = """
        stages:
          - name: Vorprüfung
            approval: { automatic: true }
          - name: Abnahme
            approval: { approvers: 2 }
          - name: Produktion
            approval: { approvers: 2 }
        """;

    [Test]
    public async Task Withdrawing_from_Produktion_moves_the_stage_tags_back_and_a_later_one_removes_them()
    {
        var sc = new LifecycleScenario(Harness, Path3);
        var s = sc.S;
        await using var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        var lc = engine.Lifecycle;
        var (sam, anna, ben) = (As(engine, "sam"), As(engine, "anna"), As(engine, "ben"));
        var reg = Harness.Registry;
        var repo = s.RegistryRepository;

        async Task<(Guid Id, string Digest)> Accept(string version)
        {
            s.WriteGoodDelivery(version);
            s.Publish("v" + version);
            var r = (await engine.Runner.RunOnceAsync(engine.Pipeline(s.Name), default)).Deliveries.Single();
            Assert.That(r.Status, Is.EqualTo(DeliveryStatus.Accepted), r.Reason);
            return (r.DeliveryId, r.Images.Single()[(r.Images.Single().IndexOf('@') + 1)..]);
        }

        async Task Promote(Guid id, string stage)
        {
            await lc.RequestPromotionAsync(sam, id, stage, default);
            await lc.ApproveAsync(anna, new ApprovalInput(id, stage, null, null, null, null), default);
            var done = await lc.ApproveAsync(ben, new ApprovalInput(id, stage, null, "ok", null, null), default);
            Assert.That((done.Delivery.Stage, done.PromotionError), Is.EqualTo((stage, (string?)null)));
        }

        var (v0, d0) = await Accept("1.0.0");
        await Promote(v0, "Abnahme");
        await Promote(v0, "Produktion");
        var (v1, d1) = await Accept("1.0.1");
        Assert.That(d1, Is.Not.EqualTo(d0));
        await Promote(v1, "Abnahme");
        await Promote(v1, "Produktion");
        Assert.That(SkopeoDigest($"{reg}/produktion/{repo}:produktion"), Is.EqualTo(d1));

        // Rücknahme of v1.0.1 from Produktion: every stage it entered goes back to v1.0.0.
        await AssertRefused(() => lc.WithdrawAsync(As(engine, "olga"), v1, "nein", default), "LC-WRONG-ROLE", "a Rücknahme needs one of the roles systempfleger, verfahrensverantwortlich, sicherheitsteam");
        var w = await lc.WithdrawAsync(ben, v1, "Sicherheitslücke CVE-2026-0001", default);
        Assert.That((w.State, w.Stage, w.ReasonCode, w.Reason), Is.EqualTo((LifecycleState.Withdrawn, "Produktion", "LC-WITHDRAWN", "withdrawn by Ben Berger: Sicherheitslücke CVE-2026-0001")));
        foreach (var (stage, tag) in new[] { ("vorpruefung", "vorpruefung"), ("abnahme", "abnahme"), ("produktion", "produktion") })
        {
            Assert.That(SkopeoDigest($"{reg}/{stage}/{repo}:{tag}"), Is.EqualTo(d0), $"{stage}: the stage tag is back on v1.0.0");
            Assert.That(SkopeoFinds($"{reg}/{stage}/{repo}@{d1}"), Is.False, $"{stage}: the withdrawn image is gone from the stage repository");
            Assert.That(SkopeoFinds($"{reg}/{stage}/{repo}:v1.0.1"), Is.False, $"{stage}: and its version tag with it");
        }

        Assert.That(SkopeoFinds($"{reg}/{repo}@{d1}"), Is.True, "the intake repository keeps the withdrawn image for the audit");
        await AssertRefused(() => lc.WithdrawAsync(sam, v1, "again", default), "LC-DELIVERY-WITHDRAWN", "was withdrawn already (withdrawn by Ben Berger");

        var entry = (await engine.Ledger.ReadAsync(v1, default)).Last();
        Assert.That((entry.Record.Stage, entry.Record.Verdict, entry.Record.ReasonCode, entry.Record.Evidence["actor"]),
            Is.EqualTo(("withdrawal", Verdict.Failed, "LC-WITHDRAWN", "Ben Berger")));
        Assert.That(entry.Record.Evidence[$"retract.Produktion.produktion/{repo}"],
            Is.EqualTo($"stage tag produktion moved back to v1.0.0 ({d0}); image {d1} deleted from {reg}/produktion/{repo}"));
        Assert.That(entry.LogIndex, Is.Not.Null, "a signed statement in the transparency log");
        var ev = WebhookNotifier.EventOf(entry.Sequence, v1, s.Name, "v1.0.1", entry.Record.Stage, false, entry.Record.ReasonCode, entry.Record.Reason, entry.Record.Evidence,
            entry.RecordedAt, entry.LogIndex)!;
        Assert.That((ev.Event, ev.Actor, ev.Detail), Is.EqualTo((NotificationEvents.Withdrawn, "Ben Berger", "withdrawn by Ben Berger: Sicherheitslücke CVE-2026-0001")));

        // Rücknahme of v1.0.0 too: no earlier version is left, the stage tags go away.
        await lc.WithdrawAsync(sam, v0, "Vertrag beendet", default);
        foreach (var stage in new[] { "vorpruefung", "abnahme", "produktion" })
            Assert.That(SkopeoFinds($"{reg}/{stage}/{repo}:{stage}"), Is.False, $"{stage}: no stage tag without a version to carry it");
        Assert.That((await engine.Ledger.ReadAsync(v0, default)).Last().Record.Evidence[$"retract.Produktion.produktion/{repo}"],
            Is.EqualTo($"stage tag produktion removed (no earlier version in Produktion); image {d0} deleted from {reg}/produktion/{repo}"));

        // A third version waiting for its second Freigabe into Abnahme: withdrawn, its approval is void.
        var (v2, d2) = await Accept("1.0.2");
        await lc.RequestPromotionAsync(sam, v2, "Abnahme", default);
        await lc.ApproveAsync(anna, new ApprovalInput(v2, "Abnahme", null, null, null, null), default);
        var w2 = await lc.WithdrawAsync(anna, v2, "falsches Paket", default);
        Assert.That((w2.State, w2.Stage, w2.TargetStage), Is.EqualTo((LifecycleState.Withdrawn, "Vorprüfung", (string?)null)));
        Assert.That((await lc.GetApprovalsAsync(sam, v2, default)).Single().VoidReason, Is.EqualTo("withdrawn by Anna Beispiel: falsches Paket"));
        Assert.That(SkopeoFinds($"{reg}/vorpruefung/{repo}@{d2}"), Is.False);
        await AssertRefused(() => lc.ApproveAsync(ben, new ApprovalInput(v2, "Abnahme", null, null, null, null), default), "LC-DELIVERY-WITHDRAWN", "was withdrawn");

        await engine.Ledger.CheckpointAsync(default);
        var audit = await engine.Audit.VerifyLogAsync(null, default);
        Assert.That(audit.Ok, Is.True, string.Join("\n", audit.Problems));
        var trace = await engine.Audit.TraceAsync(v1.ToString(), default);
        Assert.That(trace.Ok, Is.True, string.Join("\n", trace.Deliveries.SelectMany(x => x.Steps).SelectMany(x => x.Problems)));
        Assert.That(trace.Deliveries.Single().Steps.Last().Record.Stage, Is.EqualTo("withdrawal"));
    }
}
