using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Tenancy;
using static Pipeline.Tests.Engine.Lifecycle.PeopleDirectoryTests;

namespace Pipeline.Tests.Engine.Tenancy;

/// <summary>
/// People belong to tenants: the people file's <c>tenants:</c> checked against engine.yaml's
/// tenants with every error at once (file:line), and a person's scope is their tenants'
/// pipelines intersected with their own list.
/// </summary>
public class PeopleTenancyTests
{
    private static readonly TenantDirectory Two = new([
        new Tenant("land-a", "Landesamt A", ["app-a", "app-a2"], "engine.yaml", 3),
        new Tenant("land-b", "Landesamt B", ["app-b"], "engine.yaml", 6),
    ]);

    private static (PeopleDirectory? People, List<string> Errors) Parse(string yaml, TenantDirectory tenants)
    {
        var errors = new ConfigErrors();
        var people = PeopleDirectory.Parse("people.yaml", yaml, errors, tenants);
        return (people, errors.All.Select(e => e.ToString()).ToList());
    }

    [Test]
    public void A_persons_scope_is_their_tenants_pipelines_intersected_with_their_list()
    {
        var (people, errors) = Parse($"""
            people:
              - name: Anna
                tenants: [land-a]
                roles: [verfahrensverantwortlich]
                tokenSha256: {Hash("anna")}
              - name: Arne
                tenants: [land-a]
                roles: [auditor]
                pipelines: [app-a2, not-configured]
                tokenSha256: {Hash("arne")}
              - name: Olaf
                tenants: ["*"]
                roles: [sicherheitsteam]
                pipelines: ["*"]
                tokenSha256: {Hash("olaf")}
            """, Two);
        Assert.That(errors, Is.Empty);
        var anna = people!.Find("Anna")!;
        Assert.That((anna.MayActOn("app-a"), anna.MayActOn("app-a2"), anna.MayActOn("app-b")), Is.EqualTo((true, true, false)), "no list: every pipeline of her tenant");
        Assert.That(anna.InTenantScope("app-b"), Is.False);
        Assert.That(anna.EffectivePipelines, Is.EqualTo(new[] { "app-a", "app-a2" }));
        Assert.That(anna.Tenants, Is.EqualTo(new[] { "land-a" }));
        var arne = people.Find("Arne")!;
        Assert.That((arne.MayActOn("app-a"), arne.MayActOn("app-a2"), arne.InTenantScope("app-a"), arne.InTenantScope("app-b")), Is.EqualTo((false, true, true, false)));
        Assert.That(arne.EffectivePipelines, Is.EqualTo(new[] { "app-a2" }), "a name of no tenant grants nothing");
        var olaf = people.Find("Olaf")!;
        Assert.That((olaf.TenantPipelines, olaf.MayActOn("app-a"), olaf.MayActOn("app-b")), Is.EqualTo(((IReadOnlySet<string>?)null, true, true)), "\"*\": operator-wide");
    }

    [Test]
    public void Every_tenancy_error_of_the_people_file_is_reported_at_once_with_its_line()
    {
        var (people, errors) = Parse($"""
            people:
              - name: Anna
                tenants: [land-c]
                roles: [verfahrensverantwortlich]
                tokenSha256: {Hash("anna")}
              - name: Ben
                tenants: [land-a]
                roles: [verfahrensverantwortlich]
                pipelines: [app-a, app-b]
                tokenSha256: {Hash("ben")}
              - name: Carla
                roles: [systempfleger]
                pipelines: ["*"]
                tokenSha256: {Hash("carla")}
              - name: Dora
                tenants: ["*", land-b]
                roles: [auditor]
                tokenSha256: {Hash("dora")}
            """, Two);
        Assert.That(people, Is.Null);
        Assert.That(errors, Has.Count.EqualTo(4), string.Join("\n", errors));
        Assert.That(errors, Has.One.StartsWith("people.yaml:3:").And.Contains("unknown tenant 'land-c' in 'people[0].tenants'").And.Contains("known tenants: land-a, land-b"));
        Assert.That(errors, Has.One.StartsWith("people.yaml:9:").And.Contains("pipeline 'app-b' in 'people[1].pipelines' belongs to tenant 'land-b', and the person does not (tenants: land-a)"));
        Assert.That(errors, Has.One.StartsWith("people.yaml:11:").And.Contains("'people[2]' belongs to no tenant (required when engine.yaml configures tenants)"));
        Assert.That(errors, Has.One.StartsWith("people.yaml:16:").And.Contains("'people[3].tenants' takes \"*\" alone or tenant ids, not both"));
    }

    [Test]
    public void Without_tenants_a_tenant_scoped_person_is_an_error_and_pipelines_stay_required()
    {
        var (people, errors) = Parse($"""
            people:
              - name: Anna
                tenants: [land-a]
                roles: [verfahrensverantwortlich]
                tokenSha256: {Hash("anna")}
            """, TenantDirectory.Empty);
        Assert.That(people, Is.Null);
        Assert.That(errors, Has.One.StartsWith("people.yaml:3:").And.Contains("'people[0].tenants' names tenants, but engine.yaml configures none"));
        Assert.That(errors, Has.One.Contains("people[0].pipelines"), "without tenants 'pipelines' is required as before");

        (people, errors) = Parse($"""
            people:
              - name: Anna
                roles: [verfahrensverantwortlich]
                pipelines: [app-a]
                tokenSha256: {Hash("anna")}
            """, TenantDirectory.Empty);
        Assert.That(errors, Is.Empty);
        Assert.That((people!.Find("Anna")!.TenantPipelines, people.Find("Anna")!.MayActOn("app-a")), Is.EqualTo(((IReadOnlySet<string>?)null, true)), "today's behaviour");
    }
}
