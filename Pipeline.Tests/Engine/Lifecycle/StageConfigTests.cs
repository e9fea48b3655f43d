using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Tests.Engine.Lifecycle;

public class StageConfigTests
{
    private static (StagePlan? Plan, IReadOnlyList<ConfigError> Errors) Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var root = YamlReader.Load("engine.yaml", yaml, errors)!;
        var plan = StageConfigParser.Parse(root, "stages", "/tmp", checkFiles: false);
        root.Done();
        return (plan, errors.All);
    }

    [Test]
    public void Without_stages_the_default_path_has_four_stages_and_Produktion_needs_two()
    {
        var plan = StagePlan.Default;
        Assert.That(plan.Stages.Select(s => s.Name), Is.EqualTo(new[] { "Vorprüfung", "Abnahme", "Schulung", "Produktion" }));
        Assert.That(plan.Stages.Select(s => s.Tag), Is.EqualTo(new[] { "vorpruefung", "abnahme", "schulung", "produktion" }), "tags are ASCII-safe");
        Assert.That(plan.Final.Approval.Approvers, Is.EqualTo(2));
        Assert.That(plan.Stages.Take(3).Select(s => s.Approval.Approvers), Is.All.EqualTo(1));
        Assert.That(plan.Stages.Select(s => s.Approval), Has.All.Matches<ApprovalRule>(r => r!.FourEyes && r.Role == Role.Verfahrensverantwortlich && !r.Automatic));
        Assert.That(plan.Find("abnahme")!.Name, Is.EqualTo("Abnahme"), "found case-insensitively");
        Assert.That(plan.Find("vorpruefung")!.Name, Is.EqualTo("Vorprüfung"), "found by its tag");
    }

    [Test]
    public void A_pipeline_renames_drops_and_adds_stages_with_its_own_rules_and_registry()
    {
        var (plan, errors) = Parse("""
            stages:
              - name: Test
                approval: { automatic: true }
              - name: Prüfumgebung 2
                registry: { url: "https://pruef.example:5443" }
              - name: Abnahme
                tag: accept
                repositoryPrefix: stage/abnahme
                approval: { role: sicherheitsteam, approvers: 3, fourEyes: false, requireSignature: true, validFor: 72h, onBehalf: false }
              - name: Produktion
            """);
        Assert.That(errors, Is.Empty);
        Assert.That(plan!.Stages.Select(s => s.Name), Is.EqualTo(new[] { "Test", "Prüfumgebung 2", "Abnahme", "Produktion" }));
        Assert.That(plan.Stages[0].Approval.Automatic, Is.True);
        Assert.That(plan.Stages[1].Tag, Is.EqualTo("pruefumgebung-2"));
        Assert.That(plan.Stages[1].Registry!.Url.Authority, Is.EqualTo("pruef.example:5443"));
        Assert.That(plan.Stages[2].Approval, Is.EqualTo(new ApprovalRule(Role.Sicherheitsteam, 3, false, true, TimeSpan.FromHours(72), false, false)));
        Assert.That(plan.Stages[2].RepositoryFor("apps/x/app"), Is.EqualTo("stage/abnahme/apps/x/app"));
        Assert.That(plan.Stages[3].Approval.Approvers, Is.EqualTo(2), "Produktion keeps its default of two");
    }

    [Test]
    public void Every_stage_error_is_reported_with_its_line()
    {
        var (plan, errors) = Parse("""
            stages:
              - name: Vorprüfung
              - name: Abnahme
                approval: { automatic: true }
              - name: vorprüfung
              - name: Schulung
                approval: { role: chef, validFor: soon, approvers: 0 }
              - name: Produktion
                registry: { url: "ftp://x" }
                tag: "bad tag"
            """);
        Assert.That(plan, Is.Null);
        var text = errors.Select(e => e.ToString()).ToList();
        Assert.That(text, Has.Some.StartsWith("engine.yaml:4:").And.Some.Contains("only the first stage may be automatic; 'Abnahme' is stage 2"));
        Assert.That(text, Has.Some.StartsWith("engine.yaml:5:").And.Some.Contains("stage 'vorprüfung' is listed twice"));
        Assert.That(text, Has.Some.StartsWith("engine.yaml:7:").And.Some.Contains("must be one of systempfleger, verfahrensverantwortlich"));
        Assert.That(text, Has.Some.Contains("'stages[3].approval.validFor' must be a duration such as 90m, 72h or 14d, not 'soon'"));
        Assert.That(text, Has.Some.Contains("'stages[3].approval.approvers' must be a whole number from 1 to 10"));
        Assert.That(text, Has.Some.StartsWith("engine.yaml:9:").And.Some.Contains("'url' must be an http:// or https:// URL"));
        Assert.That(text, Has.Some.StartsWith("engine.yaml:10:").And.Some.Contains("is not a valid registry tag"));
    }

    [Test]
    public void Unknown_keys_in_a_stage_are_typos_with_a_hint()
    {
        var (_, errors) = Parse("""
            stages:
              - name: Abnahme
                aproval: { approvers: 2 }
            """);
        Assert.That(errors.Single().ToString(), Does.StartWith("engine.yaml:3:").And.Contain("unknown key 'stages[0].aproval'").And.Contain("did you mean 'approval'?"));
    }

    [TestCase("Vorprüfung", "vorpruefung")]
    [TestCase("Straße & Söhne", "strasse-soehne")]
    [TestCase("Café", "cafe")]
    [TestCase("!!!", "stage")]
    public void Stage_names_become_ASCII_tags(string name, string slug) => Assert.That(StageDefaults.Slug(name), Is.EqualTo(slug));
}
