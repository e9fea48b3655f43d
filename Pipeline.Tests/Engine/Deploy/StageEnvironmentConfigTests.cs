using Pipeline.Engine.Configuration;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Tests.Engine.Deploy;

public class StageEnvironmentConfigTests
{
    private static (StagePlan? Plan, IReadOnlyList<ConfigError> Errors) Parse(string yaml)
    {
        var errors = new ConfigErrors();
        var root = YamlReader.Load("engine.yaml", yaml, errors)!;
        var plan = StageConfigParser.Parse(root, "stages", "/etc/pipeline", checkFiles: false);
        root.Done();
        return (plan, errors.All);
    }

    [Test]
    public void A_docker_Vorpruefung_gitops_stages_and_a_promotion_only_stage_parse()
    {
        var (plan, errors) = Parse("""
            stages:
              - name: Vorprüfung
                approval: { automatic: true }
                environment:
                  kind: docker
                  endpoint: unix:///run/docker-vp.sock
                  network: vp-net
                  memory: 256MiB
                  cpus: "0.5"
                  user: "10001:10001"
                  healthTimeout: 30s
                  testTimeout: 5m
                  parameters: { LOG_LEVEL: debug }
              - name: Abnahme
                environment:
                  kind: gitops
                  repository: https://git.example/env/abnahme.git
                  branch: stage/abnahme
                  path: apps/fachverfahren
                  namespace: fv-abnahme
                  signingKey: keys/abnahme
                  committer: { name: Pipeline Abnahme, email: deploy@abnahme.example }
                  parameters: { replicas: "2", ingressHost: fv.abnahme.example }
                  probe: { url: "https://fv.abnahme.example/version", expectStatus: 200, expectVersion: "version={tag}", timeout: 90s, interval: 500ms }
              - name: Schulung
              - name: Produktion
                environment: { kind: gitops, repository: "https://git.example/env/prod.git", path: fv, namespace: fv, signingKey: /keys/prod }
            """);
        Assert.That(errors, Is.Empty, string.Join("\n", errors));
        var docker = (DockerEnvironment)plan!.Stages[0].Environment!;
        Assert.That((docker.Endpoint.ToString(), docker.Network, docker.MemoryBytes, docker.Cpus, docker.User), Is.EqualTo(("unix:///run/docker-vp.sock", "vp-net", 256L << 20, 0.5, "10001:10001")));
        Assert.That((docker.HealthTimeout, docker.TestTimeout, docker.Parameters["LOG_LEVEL"]), Is.EqualTo((TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5), "debug")));
        Assert.That(docker.ToRunnerSettings("127.0.0.1:5000").Validate(), Is.Empty, "the Docker runner accepts what the parser accepts");

        var abnahme = (GitOpsEnvironment)plan.Stages[1].Environment!;
        Assert.That((abnahme.Repository.ToString(), abnahme.Branch, abnahme.Path, abnahme.Namespace), Is.EqualTo(("https://git.example/env/abnahme.git", "stage/abnahme", "apps/fachverfahren", "fv-abnahme")));
        Assert.That(abnahme.SigningKeyFile, Is.EqualTo("/etc/pipeline/keys/abnahme"), "relative to the configuration file");
        Assert.That((abnahme.CommitterName, abnahme.CommitterEmail), Is.EqualTo(("Pipeline Abnahme", "deploy@abnahme.example")));
        Assert.That(abnahme.Parameters, Is.EquivalentTo(new Dictionary<string, string> { ["replicas"] = "2", ["ingressHost"] = "fv.abnahme.example" }));
        Assert.That(abnahme.Probe!.VersionFor("v1.4.2"), Is.EqualTo("version=v1.4.2"));
        Assert.That((abnahme.Probe.ExpectStatus, abnahme.Probe.Timeout, abnahme.Probe.Interval), Is.EqualTo((200, TimeSpan.FromSeconds(90), TimeSpan.FromMilliseconds(500))));

        Assert.That(plan.Stages[2].Environment, Is.Null, "no environment: promotion only");
        var prod = (GitOpsEnvironment)plan.Stages[3].Environment!;
        Assert.That((prod.Branch, prod.Probe, prod.CommitterEmail), Is.EqualTo(("main", (HttpProbe?)null, "pipeline@localhost")), "defaults");
    }

    [Test]
    public void Every_environment_error_is_reported_at_once_with_its_line()
    {
        var (plan, errors) = Parse("""
            stages:
              - name: Vorprüfung
                environment:
                  kind: docker
                  endpoint: http://docker.example
                  network: host
                  user: "0:0"
                  memory: 1KiB
                  cpus: lots
              - name: Abnahme
                environment:
                  kind: gitops
                  repository: https://user:pw@git.example/env.git
                  path: ../outside
                  namespace: Not_A_Label
                  probe: { url: https://fv.example/version, timeout: forever, expectStatus: 999 }
                  parameters: { "bad name": x }
                  colour: blue
              - name: Schulung
                environment: { kind: kubernetes }
            """);
        Assert.That(plan, Is.Null);
        var text = string.Join("\n", errors);
        Assert.Multiple(() =>
        {
            Assert.That(errors.Single(e => e.Message.Contains("endpoint")).Line, Is.EqualTo(5), text);
            Assert.That(errors.Single(e => e.Message.Contains("'network' must be 'none'") || e.Message.Contains(".network' must be 'none'")).Line, Is.EqualTo(6), text);
            Assert.That(errors.Single(e => e.Message.Contains(".user'")).Message, Does.Contain("root"), text);
            Assert.That(errors.Single(e => e.Message.Contains(".memory'")).Line, Is.EqualTo(8), text);
            Assert.That(errors.Single(e => e.Message.Contains(".cpus'")).Line, Is.EqualTo(9), text);
            Assert.That(errors.Single(e => e.Message.Contains("'repository' must be")).Line, Is.EqualTo(13), text);
            Assert.That(errors.Single(e => e.Message.Contains(".path'")).Line, Is.EqualTo(14), text);
            Assert.That(errors.Single(e => e.Message.Contains(".namespace'")).Line, Is.EqualTo(15), text);
            Assert.That(errors.Any(e => e.Message.Contains("signingKey") && e.Line == 12), text);
            Assert.That(errors.Any(e => e.Message.Contains("probe.timeout") && e.Line == 16), text);
            Assert.That(errors.Any(e => e.Message.Contains("probe.expectStatus") && e.Line == 16), text);
            Assert.That(errors.Any(e => e.Message.Contains("bad name") && e.Line == 17), text);
            Assert.That(errors.Any(e => e.Message.Contains("unknown key") && e.Message.Contains("colour") && e.Line == 18), text);
            Assert.That(errors.Any(e => e.Message.Contains("gitops or docker") && e.Message.Contains("kubernetes") && e.Line == 20), text);
        });
    }
}
