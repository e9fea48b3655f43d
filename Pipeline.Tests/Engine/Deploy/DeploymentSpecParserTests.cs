using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Engine.Deploy.DeploymentFixture;

namespace Pipeline.Tests.Engine.Deploy;

public class DeploymentSpecParserTests
{
    /// <summary>Lines of delivery.yaml before the deployment: section.</summary>
    private const int O = 10;

    private static (DeliveryManifest? Manifest, ConfigErrors Errors) Parse(string section, TempDir tree)
    {
        var errors = new ConfigErrors();
        return (DeliveryManifestParser.Parse(DeliveryYaml(section), tree.Path, [Base], errors), errors);
    }

    [Test]
    public void Without_a_deployment_section_there_is_no_deployment()
    {
        using var tree = Tree();
        var (m, errors) = Parse("", tree);
        Assert.That(errors.All, Is.Empty);
        Assert.That(m!.Deployment, Is.Null);
    }

    [Test]
    public void A_full_section_parses_into_its_records()
    {
        using var tree = Tree(kustomize: true);
        var (m, errors) = Parse(FullSection, tree);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        var d = m!.Deployment!;
        Assert.That(d.Manifests, Is.EqualTo(new ManifestSource("deploy", ManifestLayout.Kustomize)));
        Assert.That(d.Parameters.Select(p => (p.Name, p.Kind, p.Default)), Is.EqualTo(new[]
        {
            ("replicas", ParameterKind.Replicas, "2"), ("memory", ParameterKind.Memory, "256Mi"), ("logLevel", ParameterKind.Config, "info"),
            ("dbSecret", ParameterKind.SecretRef, "web-db"), ("host", ParameterKind.IngressHost, "web.example.test"),
        }));
        Assert.That(d.Parameter("host")!.Targets[1], Is.EqualTo(new ParameterTarget("Ingress", "web", "spec.tls[0].hosts[0]")));
        var t = d.AcceptanceTests!;
        Assert.That((t.Image, t.TestData, t.TestDataMount, t.Timeout), Is.EqualTo(("web-tests", "tests/data", "/testdata", TimeSpan.FromMinutes(5))));
        Assert.That(t.Command, Is.EqualTo(new[] { "/opt/tests/app", "--all" }));
        Assert.That(t.PassExitCodes, Is.EqualTo(new[] { 0, 3 }));
        Assert.That(t.Env["BASE_URL"], Is.EqualTo("http://web:8080"));
        Assert.That(t.Mocks.Single(), Is.EqualTo(t.Mocks[0] with { Name = "payments", Image = "web", Port = 8080 }));
        Assert.That(t.Mocks[0].Healthcheck, Is.EqualTo(new[] { "/opt/app/app", "--health" }));
    }

    [Test]
    public void Minimal_section_gets_defaults_and_a_plain_folder()
    {
        using var tree = Tree();
        var (m, errors) = Parse("deployment:\n  manifests: deploy/\n  acceptanceTests:\n    image: web\n", tree);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        var d = m!.Deployment!;
        Assert.That(d.Manifests, Is.EqualTo(new ManifestSource("deploy", ManifestLayout.Plain)));
        Assert.That((d.AcceptanceTests!.Timeout, d.AcceptanceTests.PassExitCodes.Single(), d.AcceptanceTests.TestData), Is.EqualTo((TimeSpan.FromMinutes(10), 0, (string?)null)));
    }

    [Test]
    public void Hostile_or_wrong_settings_are_all_reported_with_code_and_line()
    {
        using var tree = Tree();
        File.CreateSymbolicLink(tree.Combine("etc-link"), "/etc");
        var (m, errors) = Parse("""
            deployment:
              manifests: ../../etc
              privileged: true
              parameters:
                - name: replicas
                  kind: replicas
                  default: "many"
                  targets:
                    - {kind: Deployment, name: web, path: spec.template.spec.securityContext.runAsUser}
                - name: image
                  kind: config
                  default: x
                  targets:
                    - {kind: Deployment, name: web, path: "spec.template.spec.containers[0].image"}
                - name: host
                  kind: ingress-host
                  default: "evil host"
                  targets: [{kind: Ingress, name: web, path: "spec..rules"}]
                - name: replicas
                  kind: shell
                  default: x
                  targets: [{kind: Deployment, name: web, path: spec.replicas}]
              acceptanceTests:
                image: docker.io/evil
                command: [sh, -c, "rm -rf /"]
                testData: etc-link
                testDataMount: /
                timeout: 3d
                mocks:
                  - name: Pay_Ments
                    image: nginx
                    port: 70000
                pass:
                  exitCodes: [-1]
            """, tree);
        Assert.That(m, Is.Null);
        var byLine = errors.All.Select(e => (e.Line - O, Code: e.Message.Split(':')[0])).ToList();
        Assert.Multiple(() =>
        {
            Assert.That(byLine, Has.Member((2, DeploymentSpecParser.PathInvalid)));
            Assert.That(errors.All, Has.One.Matches<ConfigError>(e => e!.Line - O == 3 && e.Message == "unknown key 'deployment.privileged'"));
            Assert.That(byLine, Has.Member((7, DeploymentSpecParser.ParameterInvalid)));
            Assert.That(byLine, Has.Member((9, DeploymentSpecParser.TargetInvalid)));
            Assert.That(byLine, Has.Member((14, DeploymentSpecParser.TargetInvalid)));
            Assert.That(byLine, Has.Member((17, DeploymentSpecParser.ParameterInvalid)));
            Assert.That(byLine, Has.Member((18, DeploymentSpecParser.TargetInvalid)));
            Assert.That(byLine, Has.Member((19, DeploymentSpecParser.ParameterInvalid)), "declared twice");
            Assert.That(errors.All, Has.One.Matches<ConfigError>(e => e!.Line - O == 20 && e.Message.Contains("must be one of replicas, cpu, memory, config, secret-ref, ingress-host")));
            Assert.That(byLine, Has.Member((24, DeploymentSpecParser.ImageUnknown)));
            Assert.That(byLine, Has.Member((25, DeploymentSpecParser.TestInvalid)));
            Assert.That(byLine, Has.Member((26, DeploymentSpecParser.FolderInvalid)));
            Assert.That(byLine, Has.Member((27, DeploymentSpecParser.TestInvalid)));
            Assert.That(byLine, Has.Member((28, DeploymentSpecParser.TestInvalid)));
            Assert.That(errors.All, Has.One.Matches<ConfigError>(e => e!.Line - O == 30 && e.Message.Contains("not a valid mock name")));
            Assert.That(byLine, Has.Member((31, DeploymentSpecParser.ImageUnknown)));
            Assert.That(errors.All, Has.One.Matches<ConfigError>(e => e!.Line - O == 32 && e.Message.Contains("from 1 to 65535")));
            Assert.That(byLine, Has.Member((34, DeploymentSpecParser.TestInvalid)));
        });
        Assert.That(errors.All.Single(e => e.Line - O == 26).Message, Does.Contain("goes through a symbolic link ('etc-link')"));
    }

    [Test]
    public void A_manifests_folder_with_a_symlink_inside_or_missing_is_refused()
    {
        using var tree = Tree();
        File.CreateSymbolicLink(tree.Combine("deploy", "x.yaml"), "/etc/passwd");
        var (_, errors) = Parse("deployment:\n  manifests: deploy\n", tree);
        Assert.That(errors.All.Single().Message, Does.StartWith(DeploymentSpecParser.FolderInvalid).And.Contain("'deploy/x.yaml' is a symbolic link pointing outside the delivery"));
        var (_, missing) = Parse("deployment:\n  manifests: nowhere\n", tree);
        Assert.That(missing.All.Single().Message, Is.EqualTo("DEPLOY-SPEC-FOLDER: 'manifests: nowhere' is not a folder in the delivery"));
    }
}
