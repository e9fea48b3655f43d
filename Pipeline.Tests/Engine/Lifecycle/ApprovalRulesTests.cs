using Pipeline.Engine.Approvals;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Tests.Engine.Lifecycle;

public class ApprovalRulesTests
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.Parse("2026-12-01T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
    private const string D1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    private const string D2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    private const string Result = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    private static readonly Person Sam = new("Sam Pfleger", new HashSet<Role> { Role.Systempfleger }, ["*"], null, null);
    private static readonly Person Anna = new("Anna", new HashSet<Role> { Role.Verfahrensverantwortlich }, ["app"], null, null);
    private static readonly Person Ben = new("Ben", new HashSet<Role> { Role.Verfahrensverantwortlich }, ["app"], null, null);
    private static readonly Person Olga = new("Olga", new HashSet<Role> { Role.Betrieb }, ["app"], null, null);
    private static readonly Person Other = new("Otto", new HashSet<Role> { Role.Verfahrensverantwortlich }, ["other-app"], null, null);

    private static readonly ApprovalRule Two = new(Role.Verfahrensverantwortlich, 2, true, false, TimeSpan.FromHours(72), true, false);

    private static DeliveryLifecycle Delivery(string digest = D1, string result = Result) =>
        new(Guid.Empty, "app", "v1.0.0", LifecycleState.AwaitingApproval, 2, "Schulung", "Produktion", new StageResult("Schulung", "promoted", result, T0),
            [new DeliveryImage("reg", "schulung/apps/app", digest)], null, null, 3, T0);

    private static PromotionRequest Request(string requestedBy = "Sam Pfleger") => new(Guid.Empty, Guid.Empty, "Schulung", "Produktion", requestedBy, T0, PromotionRequestStatus.Open, null);

    private static ApprovalRecord Approval(string approver, DateTimeOffset at, string digest = D1, string result = Result, string? enteredBy = null) =>
        new(Guid.NewGuid(), Guid.Empty, Guid.Empty, "Schulung", "Produktion", approver, enteredBy, ApprovalDecision.Approve, null, at, [digest], result, null, "cli", null, null);

    [Test]
    public void Two_distinct_approvers_complete_the_rule_and_one_is_not_enough()
    {
        var one = ApprovalRules.Evaluate(Two, Request(), Delivery(), [Approval("Anna", T0)], T0);
        Assert.That((one.Complete, one.Missing), Is.EqualTo((false, 1)));
        var two = ApprovalRules.Evaluate(Two, Request(), Delivery(), [Approval("Anna", T0), Approval("Ben", T0.AddMinutes(1))], T0.AddMinutes(2));
        Assert.That((two.Complete, two.Counted.Count), Is.EqualTo((true, 2)));
    }

    [Test]
    public void The_same_person_twice_counts_once()
    {
        var e = ApprovalRules.Evaluate(Two, Request(), Delivery(), [Approval("Anna", T0), Approval("Anna", T0.AddMinutes(1))], T0.AddMinutes(2));
        Assert.That(e.Missing, Is.EqualTo(1));
        Assert.That(e.Void.Single().Why, Does.Contain("Anna approved already; the same person counts once"));
    }

    [Test]
    public void The_requester_never_counts_four_eyes()
    {
        var e = ApprovalRules.Evaluate(Two, Request("Anna"), Delivery(), [Approval("Anna", T0), Approval("Ben", T0)], T0);
        Assert.That(e.Missing, Is.EqualTo(1));
        Assert.That(e.Void.Single().Why, Does.Contain("four eyes: the requester never counts"));
        var without = ApprovalRules.Evaluate(Two with { FourEyes = false }, Request("Anna"), Delivery(), [Approval("Anna", T0), Approval("Ben", T0)], T0);
        Assert.That(without.Complete, Is.True, "without four eyes the requester may count");
    }

    [Test]
    public void An_approval_expires_after_its_validity()
    {
        var approvals = new[] { Approval("Anna", T0), Approval("Ben", T0.AddHours(71)) };
        Assert.That(ApprovalRules.Evaluate(Two, Request(), Delivery(), approvals, T0.AddHours(72)).Complete, Is.True, "still valid at exactly 72h");
        var late = ApprovalRules.Evaluate(Two, Request(), Delivery(), approvals, T0.AddHours(72).AddSeconds(1));
        Assert.That(late.Missing, Is.EqualTo(1));
        Assert.That(late.Void.Single().Why, Does.Contain("expired at 2026-12-04T10:00:00Z (valid 72h)"));
    }

    [Test]
    public void An_approval_is_void_when_the_digests_or_the_stage_result_changed()
    {
        var changedDigest = ApprovalRules.Evaluate(Two, Request(), Delivery(D2), [Approval("Anna", T0), Approval("Ben", T0)], T0);
        Assert.That(changedDigest.Counted, Is.Empty);
        Assert.That(changedDigest.Void.Select(v => v.Why), Has.All.Contains("the delivery's are now " + D2));
        var changedResult = ApprovalRules.Evaluate(Two, Request(), Delivery(result: "sha256:" + new string('b', 64)), [Approval("Anna", T0)], T0);
        Assert.That(changedResult.Void.Single().Why, Does.Contain("the result of stage Schulung changed since it was given"));
    }

    [Test]
    public void Who_may_approve_role_pipeline_own_request_and_on_behalf()
    {
        Assert.That(ApprovalRules.CheckApprover(Two, new Actor(Anna, "cli"), null, Request(), "app"), Is.EqualTo(Anna));
        Assert.That(ApprovalRules.CheckApprover(Two, new Actor(Sam, "portal"), Ben, Request(), "app"), Is.EqualTo(Ben), "a systempfleger enters it for Ben: Ben's Freigabe");

        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Olga, "cli"), null, Request(), "app"), "LC-WRONG-ROLE", "needs the role verfahrensverantwortlich; Olga has betrieb");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Sam, "cli"), null, Request(), "app"), "LC-WRONG-ROLE", "Sam Pfleger has systempfleger");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Anna, "cli"), null, Request("Anna"), "app"), "LC-OWN-REQUEST", "Anna requested this promotion into Produktion and cannot approve it (four eyes)");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Other, "cli"), null, Request(), "app"), "LC-PIPELINE-NOT-ALLOWED", "Otto may not act on pipeline 'app'");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Anna, "cli"), Ben, Request(), "app"), "LC-ON-BEHALF-NOT-ALLOWED", "only a systempfleger may enter a Freigabe on behalf");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two with { OnBehalf = false }, new Actor(Sam, "cli"), Ben, Request(), "app"), "LC-ON-BEHALF-NOT-ALLOWED", "Ben must approve personally");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Sam, "cli"), Other, Request(), "app"), "LC-PIPELINE-NOT-ALLOWED", "Otto may not act on pipeline 'app'");
        AssertCode(() => _ = ApprovalRules.CheckApprover(Two, new Actor(Sam, "cli"), Olga, Request(), "app"), "LC-WRONG-ROLE", "Olga has betrieb");
    }

    internal static void AssertCode(Action action, string code, string cause)
    {
        var e = Assert.Throws<LifecycleException>(() => action())!;
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Does.Contain(cause));
    }
}
