using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Lifecycle;
using Pipeline.Engine.Tenancy;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Tenancy;

public class TenancyConfigTests
{
    private static (TenantDirectory Tenants, StagePlan? Stages, ConfigErrors Errors) Engine(string yaml)
    {
        var errors = new ConfigErrors();
        var root = YamlReader.Load("engine.yaml", yaml, errors)!;
        var stages = StageConfigParser.Parse(root, "stages", "/etc/pipeline", checkFiles: false);
        var tenants = TenantDirectory.Parse(root);
        root.Done();
        return (tenants, stages, errors);
    }

    /// <summary>The shipped example pipeline, renamed, with <paramref name="extra"/> appended at the top level.</summary>
    private static PipelineDefinition? Pipeline(string name, string extra, ConfigErrors errors)
    {
        var text = File.ReadAllText(Path.Combine(TestServices.RepoRoot, "pipelines", "fachverfahren-beispiel.yaml"))
            .Replace("name: fachverfahren-beispiel", "name: " + name, StringComparison.Ordinal) + "\n" + extra;
        return PipelineDefinitionLoader.Parse($"/etc/pipeline/pipelines/{name}.yaml", text, errors, checkEnvironment: false);
    }

    [Test]
    public void Tenants_and_environment_hosts_parse()
    {
        var (tenants, stages, errors) = Engine("""
            tenants:
              - id: land-a
                name: Landesamt A
                pipelines: [fv-a, meldewesen]
              - id: land-b
                name: Landesamt B
                pipelines: [fv-b]
            stages:
              - name: Abnahme
                environment:
                  kind: docker
                  endpoint: unix:///run/docker-abnahme.sock
                  hosts: { maxSchutzbedarf: hoch, dedicatedTo: shared }
              - name: Produktion
                environment:
                  kind: docker
                  endpoint: unix:///run/docker-prod-a.sock
                  hosts: { maxSchutzbedarf: sehr-hoch, dedicatedTo: land-a }
            """);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        Assert.That(tenants.Tenants.Select(t => (t.Id, t.DisplayName)), Is.EqualTo(new[] { ("land-a", "Landesamt A"), ("land-b", "Landesamt B") }));
        Assert.That((tenants.TenantOf("meldewesen")?.Id, tenants.TenantOf("fv-b")?.Id, tenants.TenantOf("other")), Is.EqualTo(("land-a", "land-b", (Tenant?)null)));
        var shared = stages!.Stages[0].Environment!.Hosts!;
        var prod = stages.Stages[1].Environment!.Hosts!;
        Assert.That((shared.Shared, shared.MaxSchutzbedarf), Is.EqualTo((true, Schutzbedarf.Hoch)));
        Assert.That((prod.DedicatedTo, prod.MaxSchutzbedarf, prod.Line), Is.EqualTo(("land-a", Schutzbedarf.SehrHoch, 18)));
    }

    [Test]
    public void Every_tenant_and_hosts_error_is_reported_at_once_with_its_line()
    {
        var (_, _, errors) = Engine("""
            tenants:
              - id: land-a
                name: Landesamt A
                pipelines: [fv-a]
              - id: land-a
                name: Doppelt
                pipelines: []
              - id: Land_C
                name: C
                pipelines: [fv-a]
              - id: land-d
                name: D
                pipelines: [fv-a]
            stages:
              - name: Abnahme
                environment:
                  kind: docker
                  endpoint: unix:///run/docker-abnahme.sock
                  hosts: { maxSchutzbedarf: extrem, dedicatedTo: "Nicht Gültig" }
            """);
        var byLine = errors.All.GroupBy(e => e.Line).ToDictionary(g => g.Key, g => string.Join(" | ", g.Select(e => e.Message)));
        Assert.Multiple(() =>
        {
            Assert.That(byLine[5], Does.Contain("tenant 'land-a' is listed twice"));
            Assert.That(byLine[8], Does.Contain("not a valid tenant id"));
            Assert.That(byLine[13], Does.Contain("pipeline 'fv-a' is in tenant 'land-a' and in tenant 'land-d'"));
            Assert.That(byLine[19], Does.Contain("must be normal, hoch or sehr-hoch, not 'extrem'").And.Contain("must be a tenant id or 'shared'"));
        });
        Assert.That(errors.All.All(e => e.File == "engine.yaml"));
    }

    [Test]
    public void A_pipeline_declares_its_Schutzbedarf_and_never_a_weaker_scan_profile()
    {
        var errors = new ConfigErrors();
        var ok = Pipeline("fv-a", "schutzbedarf: hoch\nscan: { policy: standard, profile: sehr-hoch }\n", errors);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        Assert.That(ok!.Schutzbedarf, Is.EqualTo(Schutzbedarf.Hoch));

        var selected = Pipeline("fv-s", "schutzbedarf: sehr-hoch\nscan: { policy: standard }\n", errors);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        Assert.That(selected!.Scan, Is.EqualTo(new ScanSelection("standard", "sehr-hoch")), "the Schutzbedarf selects the scan profile of the same name");

        var weaker = Pipeline("fv-b", "schutzbedarf: sehr-hoch\nscan: { policy: standard, profile: hoch }\n", errors);
        Assert.That(weaker, Is.Null);
        Assert.That(errors.All.Single().Message, Does.Contain("scan profile 'hoch' is weaker than the pipeline's Schutzbedarf sehr-hoch"));

        var bad = new ConfigErrors();
        Assert.That(Pipeline("fv-c", "schutzbedarf: mittel\n", bad), Is.Null);
        Assert.That(bad.All.Single().Message, Does.Contain("'schutzbedarf' must be normal, hoch or sehr-hoch, not 'mittel'"));
    }

    [Test]
    public void With_tenants_every_pipeline_environment_and_reference_is_checked_at_once()
    {
        var (tenants, stages, parse) = Engine("""
            tenants:
              - id: land-a
                name: Landesamt A
                pipelines: [fv-a, geister-verfahren]
            stages:
              - name: Abnahme
                environment: { kind: docker, endpoint: "unix:///run/a.sock" }
              - name: Produktion
                environment: { kind: docker, endpoint: "unix:///run/p.sock", hosts: { maxSchutzbedarf: hoch, dedicatedTo: land-x } }
            """);
        Assert.That(parse.All, Is.Empty, string.Join("\n", parse.All));
        var pe = new ConfigErrors();
        var pipelines = new[] { Pipeline("fv-a", "", pe)!, Pipeline("fv-b", "schutzbedarf: normal\n", pe)! };
        Assert.That(pe.All, Is.Empty);

        var errors = new ConfigErrors();
        TenancyValidator.Check(tenants, stages, pipelines, errors);
        var text = errors.All.Select(e => e.ToString()).ToList();
        Assert.That(text, Has.Count.EqualTo(5), string.Join("\n", text));
        Assert.Multiple(() =>
        {
            Assert.That(text, Has.One.StartsWith("engine.yaml:2:").And.Contains("names the pipeline 'geister-verfahren', which is not configured"));
            Assert.That(text, Has.One.StartsWith("/etc/pipeline/pipelines/fv-a.yaml:1:").And.Contains("declares no 'schutzbedarf'"));
            Assert.That(text, Has.One.StartsWith("/etc/pipeline/pipelines/fv-b.yaml:1:").And.Contains("pipeline 'fv-b' belongs to no tenant"));
            Assert.That(text, Has.One.StartsWith("engine.yaml:7:").And.Contains("stage 'Abnahme' declares no 'hosts:'"));
            Assert.That(text, Has.One.StartsWith("engine.yaml:9:").And.Contains("dedicated to the unknown tenant 'land-x'"));
        });

        var none = new ConfigErrors();
        TenancyValidator.Check(TenantDirectory.Empty, stages, pipelines, none);
        Assert.That(none.All, Is.Empty, "without tenants nothing is required");
    }
}
