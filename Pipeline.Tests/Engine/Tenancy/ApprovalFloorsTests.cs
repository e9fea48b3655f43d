using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Lifecycle;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Tests.Engine.Tenancy;

public class ApprovalFloorsTests
{
    private static (ApprovalFloors Floors, ConfigErrors Errors) Parse(string yaml, bool tenants = true)
    {
        var errors = new ConfigErrors();
        var root = YamlReader.Load("engine.yaml", yaml, errors)!;
        var floors = ApprovalFloors.Parse(root, tenants);
        root.Done();
        return (floors, errors);
    }

    private static StagePlan Plan() => new([
        StageDefaults.Make("Vorprüfung") with { Approval = ApprovalRule.DefaultFor("Vorprüfung") with { Automatic = true } },
        StageDefaults.Make("Abnahme") with { Approval = ApprovalRule.DefaultFor("Abnahme") with { ValidFor = TimeSpan.FromHours(72), OnBehalf = false } },
        StageDefaults.Make("Produktion") with { Approval = ApprovalRule.DefaultFor("Produktion") with { Approvers = 1, FourEyes = false } },
    ]);

    [Test]
    public void The_defaults_raise_hoch_and_sehr_hoch_and_leave_normal_as_configured()
    {
        var plan = Plan();
        Assert.That(ApprovalFloors.Defaults.Apply(plan, Schutzbedarf.Normal), Is.SameAs(plan), "normal: every stage's rule as configured");

        var hoch = ApprovalFloors.Defaults.Apply(plan, Schutzbedarf.Hoch);
        Assert.That(hoch.Stages.Select(s => s.Approval.Describe()), Is.EqualTo(new[]
        {
            "automatic",
            "1 × verfahrensverantwortlich, four eyes, valid 72h",
            "2 × verfahrensverantwortlich, four eyes (raised by Schutzbedarf hoch)",
        }));

        var sehrHoch = ApprovalFloors.Defaults.Apply(plan, Schutzbedarf.SehrHoch);
        Assert.That(sehrHoch.Stages.Select(s => s.Approval.Describe()), Is.EqualTo(new[]
        {
            "automatic",
            "1 × verfahrensverantwortlich, four eyes, signed, valid 72h (raised by Schutzbedarf sehr-hoch)",
            "2 × verfahrensverantwortlich, four eyes, signed (raised by Schutzbedarf sehr-hoch)",
        }));
        Assert.That((sehrHoch.Stages[1].Approval.ValidFor, sehrHoch.Stages[1].Approval.OnBehalf, sehrHoch.Stages[1].Approval.Role),
            Is.EqualTo(((TimeSpan?)TimeSpan.FromHours(72), false, Role.Verfahrensverantwortlich)), "what the floor does not name stays as configured");
        Assert.That(sehrHoch.Stages.Select(s => (s.Name, s.Tag, s.RepositoryPrefix)), Is.EqualTo(plan.Stages.Select(s => (s.Name, s.Tag, s.RepositoryPrefix))));
    }

    [Test]
    public void The_effective_rule_is_never_weaker_than_the_stage_rule_nor_than_the_floor()
    {
        var checkedCases = 0;
        foreach (var approvers in new[] { 1, 2, 3, 5 })
        foreach (var signed in new[] { false, true })
        foreach (var fourEyes in new[] { false, true })
        foreach (var floor in new[] { ApprovalFloor.None, new ApprovalFloor(1, 2, false), new ApprovalFloor(2, 3, true), new ApprovalFloor(4, 4, false) })
        foreach (var final in new[] { false, true })
        {
            var rule = new ApprovalRule(Role.Betrieb, approvers, fourEyes, signed, TimeSpan.FromDays(14), true, false);
            var raised = floor.Raise(rule, final, Schutzbedarf.Hoch);
            var why = $"rule {rule.Describe()}, floor {ApprovalFloors.Describe(floor)}, final {final}";
            Assert.That(raised.Approvers, Is.EqualTo(Math.Max(approvers, final ? floor.FinalApprovers : floor.Approvers)), why);
            Assert.That(raised.RequireSignature, Is.EqualTo(signed || floor.Signed), why);
            Assert.That(raised.FourEyes, Is.EqualTo(fourEyes || raised != rule), why);
            Assert.That((raised.Role, raised.ValidFor, raised.OnBehalf, raised.Automatic), Is.EqualTo((Role.Betrieb, (TimeSpan?)TimeSpan.FromDays(14), true, false)), why);
            Assert.That(raised.RaisedBy is null, Is.EqualTo(raised.Approvers == approvers && raised.RequireSignature == signed), why);
            checkedCases++;
        }

        Assert.That(checkedCases, Is.EqualTo(128));
        var automatic = new ApprovalRule(Role.Verfahrensverantwortlich, 1, true, false, null, true, true);
        Assert.That(new ApprovalFloor(3, 3, true).Raise(automatic, false, Schutzbedarf.SehrHoch), Is.SameAs(automatic), "the automatic intake step stays automatic");
    }

    [Test]
    public void Configured_floors_parse_and_absent_levels_keep_their_defaults()
    {
        var (floors, errors) = Parse("""
            approvalFloors:
              hoch: { signed: true }
              sehr-hoch: { approvers: 2, finalApprovers: 3 }
            """);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        Assert.That((floors.Normal, floors.Hoch, floors.SehrHoch), Is.EqualTo((ApprovalFloor.None, new ApprovalFloor(1, 2, true), new ApprovalFloor(2, 3, true))));
        Assert.That(Parse("tenants: []").Floors, Is.SameAs(ApprovalFloors.Defaults));
    }

    [Test]
    public void Every_floor_error_is_reported_at_once_with_its_line()
    {
        var (_, errors) = Parse("""
            approvalFloors:
              normal: { approvers: 2 }
              hoch: { approvers: 0, finalApprovers: 1 }
              sehr-hoch: { approvers: 2, finalApprovers: 1, signed: maybe }
              extrem: { approvers: 9 }
            """, tenants: false);
        var text = errors.All.Select(e => e.ToString()).ToList();
        Assert.That(text, Has.Count.EqualTo(6), string.Join("\n", text));
        Assert.That(text, Has.One.StartsWith("engine.yaml:2:").And.Contains("'approvalFloors' applies only when 'tenants:' are configured"));
        Assert.That(text, Has.One.StartsWith("engine.yaml:3:").And.Contains("'approvalFloors.hoch.approvers' must be a whole number from 1 to 10, not '0'"));
        Assert.That(text, Has.One.StartsWith("engine.yaml:3:").And.Contains("'approvalFloors.hoch' must be at least as strict as 'normal'"));
        Assert.That(text, Has.One.StartsWith("engine.yaml:4:").And.Contains("'approvalFloors.sehr-hoch.finalApprovers' (1) must not be less than 'approvalFloors.sehr-hoch.approvers' (2)"));
        Assert.That(text, Has.One.StartsWith("engine.yaml:4:").And.Contains("'approvalFloors.sehr-hoch.signed' must be true or false, not 'maybe'"));
        Assert.That(text, Has.One.StartsWith("engine.yaml:5:").And.Contains("unknown key 'approvalFloors.extrem'"));
    }
}
