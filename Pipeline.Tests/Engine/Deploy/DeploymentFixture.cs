using Pipeline.Tests.Checkup.Manifests;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Deploy;

/// <summary>A delivery tree with images, manifests (plain or a kustomize base) and acceptance-test data.</summary>
internal static class DeploymentFixture
{
    public const string Base = "base/busybox@sha256:1111111111111111111111111111111111111111111111111111111111111111";

    public static TempDir Tree(bool kustomize = false)
    {
        var t = new TempDir();
        Directory.CreateDirectory(t.Combine("bin"));
        File.WriteAllText(t.Combine("bin", "app"), "x");
        Directory.CreateDirectory(t.Combine("deploy"));
        // Files end with a line break, as files do: kustomize 2 (Debian's kubectl 1.20, what a fresh
        // machine installs) adds one to a block scalar that ends the file without it.
        File.WriteAllText(t.Combine("deploy", "deployment.yaml"), ManifestTestData.GoodDeployment + "\n");
        File.WriteAllText(t.Combine("deploy", "service.yaml"), ManifestTestData.GoodService + "\n---\n" + ManifestTestData.GoodConfigMap + "\n");
        File.WriteAllText(t.Combine("deploy", "ingress.yaml"), ManifestTestData.GoodIngress + "\n");
        if (kustomize)
            File.WriteAllText(t.Combine("deploy", "kustomization.yaml"),
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - service.yaml\n  - ingress.yaml\n");
        Directory.CreateDirectory(t.Combine("tests", "data"));
        File.WriteAllText(t.Combine("tests", "data", "cases.json"), "[]");
        return t;
    }

    /// <summary>delivery.yaml with two images (the app and a test image) and <paramref name="deployment"/> as its deployment: section.</summary>
    public static string DeliveryYaml(string deployment) => $"""
        version: 1
        images:
          - name: web
            base: {Base}
            files: [{"{"}from: bin, to: /opt/app{"}"}]
            user: "10001"
          - name: web-tests
            base: {Base}
            files: [{"{"}from: bin, to: /opt/tests{"}"}]
            user: "10001"
        {deployment}
        """;

    /// <summary>A complete deployment: section (indented for <see cref="DeliveryYaml"/>).</summary>
    public const string FullSection = """
        deployment:
          manifests: deploy
          parameters:
            - name: replicas
              kind: replicas
              default: "2"
              targets:
                - {kind: Deployment, name: web, path: spec.replicas}
            - name: memory
              kind: memory
              default: 256Mi
              targets:
                - {kind: Deployment, name: web, path: "spec.template.spec.containers[name=web].resources.limits.memory"}
            - name: logLevel
              kind: config
              default: info
              targets:
                - {kind: Deployment, name: web, path: "spec.template.spec.containers[name=web].env[name=LOG_LEVEL].value"}
                - {kind: ConfigMap, name: web-config, path: data.GREETING}
            - name: dbSecret
              kind: secret-ref
              default: web-db
              targets:
                - {kind: Deployment, name: web, path: "spec.template.spec.containers[name=web].env[name=DB_PASSWORD].valueFrom.secretKeyRef.name"}
            - name: host
              kind: ingress-host
              default: web.example.test
              targets:
                - {kind: Ingress, name: web, path: "spec.rules[0].host"}
                - {kind: Ingress, name: web, path: "spec.tls[0].hosts[0]"}
          acceptanceTests:
            image: web-tests
            command: [/opt/tests/app, --all]
            testData: tests/data
            env: {BASE_URL: "http://web:8080"}
            mocks:
              - name: payments
                image: web
                command: [/opt/app/app, --mock]
                healthcheck: [/opt/app/app, --health]
                port: 8080
            timeout: 5m
            pass:
              exitCodes: [0, 3]
        """;
}
