using System.Text.Json.Nodes;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Lifecycle;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Lifecycle;

/// <summary>
/// A delivery scenario with a people file (tokens, one SSH key for Anna) and the stage path
/// Vorprüfung (automatic) ► Abnahme ► Schulung ► Produktion (two approvers).
/// </summary>
internal sealed class LifecycleScenario
{
    public const string Stages = """
        stages:
          - name: Vorprüfung
            approval: { automatic: true }
          - name: Abnahme
            approval: { validFor: 72h }
          - name: Schulung
          - name: Produktion
            approval: { approvers: 2 }
        """;

    public LifecycleScenario(DeliveryHarness harness, string? stagesYaml = null)
    {
        S = harness.NewScenario();
        AnnaKey = SupplierRepo.NewKey(Path.Combine(S.Root, "keys"), "anna");
        MalloryKey = SupplierRepo.NewKey(Path.Combine(S.Root, "keys"), "mallory");
        File.WriteAllText(Path.Combine(S.Root, "people.yaml"), $"""
            people:
              - name: Sam Pfleger
                roles: [systempfleger]
                pipelines: ["*"]
                tokenSha256: {Hash("sam")}
              - name: Anna Beispiel
                roles: [verfahrensverantwortlich]
                pipelines: [{S.Name}]
                tokenSha256: {Hash("anna")}
                sshKey: {AnnaKey.PublicKey}
              - name: Ben Berger
                roles: [verfahrensverantwortlich]
                pipelines: [{S.Name}]
                tokenSha256: {Hash("ben")}
              - name: Carla Conrad
                roles: [verfahrensverantwortlich]
                pipelines: [{S.Name}]
                tokenSha256: {Hash("carla")}
              - name: Olga Ops
                roles: [betrieb]
                pipelines: [{S.Name}]
                tokenSha256: {Hash("olga")}
              - name: Otto Other
                roles: [verfahrensverantwortlich]
                pipelines: [some-other-app]
                tokenSha256: {Hash("otto")}
            """);
        File.AppendAllText(S.ConfigPath, "\npeople:\n  file: people.yaml\n" + (stagesYaml ?? Stages) + "\n");
        S.WriteDefinition();
    }

    /// <summary>Puts every person of the people file into tenant <paramref name="tenant"/> (required once engine.yaml configures tenants).</summary>
    public void PeopleIn(string tenant)
    {
        var file = Path.Combine(S.Root, "people.yaml");
        File.WriteAllText(file, File.ReadAllText(file).Replace("\n    roles:", $"\n    tenants: [{tenant}]\n    roles:", StringComparison.Ordinal));
    }

    public Scenario S { get; }
    public SshKey AnnaKey { get; }
    public SshKey MalloryKey { get; }

    public static string Hash(string token) => Pipeline.Tests.Engine.Lifecycle.PeopleDirectoryTests.Hash(token + "-token-0123456789");

    public static string Token(string who) => who + "-token-0123456789";

    public static Actor As(PipelineEngine engine, string who) => engine.Lifecycle.People.Authenticate(Token(who), "test")!;

    public string TokenFile(string who)
    {
        var f = Path.Combine(S.Root, who + ".token");
        File.WriteAllText(f, Token(who) + "\n");
        return f;
    }

    /// <summary>The digest skopeo sees for <paramref name="reference"/> (registry/repo:tag).</summary>
    public static string SkopeoDigest(string reference)
    {
        var r = Shell.Run("skopeo", ["inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://" + reference]);
        r.EnsureSuccess("skopeo inspect " + reference);
        return r.Stdout.Trim();
    }

    /// <summary>The manifest bytes skopeo reads for <paramref name="reference"/>, as text.</summary>
    public static string SkopeoRaw(string reference)
    {
        var r = Shell.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://" + reference]);
        r.EnsureSuccess("skopeo inspect --raw " + reference);
        return r.Stdout;
    }

    public static bool SkopeoFinds(string reference) =>
        Shell.Run("skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://" + reference]).ExitCode == 0;

    public static JsonNode? Json(string text) => JsonNode.Parse(text);

    public static async Task<LifecycleException> Refused(Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (LifecycleException e)
        {
            return e;
        }

        Assert.Fail("the action was not refused");
        throw new InvalidOperationException();
    }

    public static async Task AssertRefused(Func<Task> action, string code, string cause)
    {
        var e = await Refused(action);
        Assert.That(e.Code, Is.EqualTo(code), e.Message);
        Assert.That(e.Message, Does.Contain(cause));
    }
}
