using System.Text;
using Pipeline.Checkup.Manifests;
using Pipeline.Engine;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Deploy;
using Pipeline.Tests.Support;
using YamlDotNet.RepresentationModel;
using static Pipeline.Tests.Engine.Deploy.DeploymentFixture;

namespace Pipeline.Tests.Engine.Deploy;

public class ManifestRendererTests
{
    private const string WebRef = "127.0.0.1:5000/abnahme/acme/web@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    private const string TestsRef = "127.0.0.1:5000/abnahme/acme/web-tests@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    private static readonly Dictionary<string, string> Pinned = new() { ["web"] = WebRef, ["web-tests"] = TestsRef };
    private static readonly RenderedDelivery Delivery = new(Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), "acme-web", "v1.4.2+build.7", "Abnahme");

    private static readonly StageOverlay Overlay = new(
        "acme-abnahme",
        new Dictionary<string, string> { ["replicas"] = "3", ["host"] = "web.abnahme.example.test", ["logLevel"] = "debug" },
        new Dictionary<string, string> { ["team"] = "payments" });

    private static DeploymentSpec Spec(TempDir tree)
    {
        var errors = new ConfigErrors();
        var m = DeliveryManifestParser.Parse(DeliveryYaml(FullSection), tree.Path, [Base], errors);
        Assert.That(errors.All, Is.Empty, string.Join("\n", errors.All));
        return m!.Deployment!;
    }

    private static YamlMappingNode Doc(RenderedManifests r, string file)
    {
        var s = new YamlStream();
        s.Load(new StringReader(Encoding.UTF8.GetString(r.Files[file])));
        return (YamlMappingNode)s.Documents.Single().RootNode;
    }

    private static string At(YamlNode n, params object[] path)
    {
        foreach (var p in path) n = p is int i ? ((YamlSequenceNode)n)[i] : ((YamlMappingNode)n)[(string)p];
        return ((YamlScalarNode)n).Value!;
    }

    [Test]
    public void Rendering_sets_namespace_parameters_pinned_images_and_labels()
    {
        using var tree = Tree();
        var r = ManifestRenderer.Render(Spec(tree), tree.Path, Overlay, Pinned, Delivery);
        Assert.That(r.Files.Keys, Is.EqualTo(new[]
        {
            "configmap-web-config.yaml", "deployment-web.yaml", "ingress-web.yaml", "kustomization.yaml", "service-web.yaml",
        }));

        var d = Doc(r, "deployment-web.yaml");
        var c = new object[] { "spec", "template", "spec", "containers", 0 };
        Assert.Multiple(() =>
        {
            Assert.That(At(d, "metadata", "namespace"), Is.EqualTo("acme-abnahme"));
            Assert.That(At(d, "spec", "replicas"), Is.EqualTo("3"));
            Assert.That(((YamlScalarNode)d["spec"]["replicas"]).Style, Is.EqualTo(YamlDotNet.Core.ScalarStyle.Plain), "replicas stays a number");
            Assert.That(At(d, [.. c, "image"]), Is.EqualTo(WebRef));
            Assert.That(At(d, [.. c, "resources", "limits", "memory"]), Is.EqualTo("256Mi"), "the default where the stage sets nothing");
            Assert.That(At(d, [.. c, "env", 0, "value"]), Is.EqualTo("debug"));
            Assert.That(At(d, [.. c, "env", 1, "valueFrom", "secretKeyRef", "name"]), Is.EqualTo("web-db"));
            foreach (var meta in new[] { d["metadata"], d["spec"]["template"]["metadata"] })
            {
                Assert.That(At(meta, "labels", "team"), Is.EqualTo("payments"));
                Assert.That(At(meta, "labels", "delivery.pipeline.example/delivery"), Is.EqualTo("0f8fad5b-d9cb-469f-a165-70867728950e"));
                Assert.That(At(meta, "labels", "delivery.pipeline.example/tag"), Is.EqualTo("v1.4.2_build.7"));
                Assert.That(At(meta, "labels", "delivery.pipeline.example/stage"), Is.EqualTo("Abnahme"));
            }
            Assert.That(((YamlMappingNode)d["spec"]["selector"]["matchLabels"]).Children, Has.Count.EqualTo(1), "selectors are left alone");
            Assert.That(At(Doc(r, "configmap-web-config.yaml"), "data", "GREETING"), Is.EqualTo("debug"));
            Assert.That(At(Doc(r, "ingress-web.yaml"), "spec", "rules", 0, "host"), Is.EqualTo("web.abnahme.example.test"));
            Assert.That(At(Doc(r, "ingress-web.yaml"), "spec", "tls", 0, "hosts", 0), Is.EqualTo("web.abnahme.example.test"));
            Assert.That(At(Doc(r, "service-web.yaml"), "metadata", "namespace"), Is.EqualTo("acme-abnahme"));
        });
    }

    [Test]
    public void Rendering_is_deterministic_and_a_kustomize_base_renders_like_the_same_plain_folder()
    {
        using var plain = Tree();
        using var kustomize = Tree(kustomize: true);
        var a = ManifestRenderer.Render(Spec(plain), plain.Path, Overlay, Pinned, Delivery);
        var b = ManifestRenderer.Render(Spec(plain), plain.Path, Overlay, Pinned, Delivery);
        var k = ManifestRenderer.Render(Spec(kustomize), kustomize.Path, Overlay, Pinned, Delivery);
        Assert.That(b.Files.Keys, Is.EqualTo(a.Files.Keys));
        foreach (var (name, bytes) in a.Files)
        {
            Assert.That(b.Files[name], Is.EqualTo(bytes), name);
            Assert.That(k.Files[name], Is.EqualTo(bytes), name);
        }
        Assert.That(a.Digest, Is.EqualTo(b.Digest).And.Match("^sha256:[0-9a-f]{64}$"));
        var other = ManifestRenderer.Render(Spec(plain), plain.Path, Overlay with { Namespace = "acme-produktion" }, Pinned, Delivery);
        Assert.That(other.Digest, Is.Not.EqualTo(a.Digest));
    }

    [Test]
    public void Kubectl_kustomize_builds_the_rendered_folder_to_the_same_objects()
    {
        using var tree = Tree();
        using var outDir = new TempDir();
        var r = ManifestRenderer.Render(Spec(tree), tree.Path, Overlay, Pinned, Delivery);
        r.WriteTo(outDir.Path);
        var built = Shell.Run("kubectl", ["kustomize", outDir.Path]).EnsureSuccess("kubectl kustomize");
        var ours = r.Files.Where(f => f.Key != RenderedManifests.KustomizationFile).SelectMany(f => Canonical(Encoding.UTF8.GetString(f.Value))).Order(StringComparer.Ordinal);
        Assert.That(Canonical(built.Stdout).Order(StringComparer.Ordinal), Is.EqualTo(ours));
        Assert.That(Canonical(built.Stdout), Has.Count.EqualTo(4));
    }

    [Test]
    public void Our_reading_of_a_supplier_kustomize_base_matches_kubectl_kustomize()
    {
        using var tree = Tree(kustomize: true);
        var built = Shell.Run("kubectl", ["kustomize", tree.Combine("deploy")]).EnsureSuccess("kubectl kustomize");
        var loaded = ManifestLoader.Load(tree.Combine("deploy"));
        Assert.That(loaded.Violations, Is.Empty);
        var ours = loaded.Documents.SelectMany(d => Canonical(ManifestYamlWriter.Write(d.Root))).Order(StringComparer.Ordinal);
        Assert.That(Canonical(built.Stdout).Order(StringComparer.Ordinal), Is.EqualTo(ours));
    }

    [Test]
    public void An_overlay_that_does_not_fit_the_delivery_is_refused_with_every_reason()
    {
        using var tree = Tree();
        var bad = new StageOverlay("Not_A_Namespace",
            new Dictionary<string, string> { ["replicas"] = "010", ["privileged"] = "true", ["memory"] = "lots" },
            new Dictionary<string, string> { ["delivery.pipeline.example/delivery"] = "forged" });
        var pinned = new Dictionary<string, string>(Pinned) { ["web"] = "127.0.0.1:5000/abnahme/acme/web:latest" };
        var e = Assert.Throws<PipelineException>(() => ManifestRenderer.Render(Spec(tree), tree.Path, bad, pinned, Delivery))!;
        Assert.That(e.Code, Is.EqualTo(ManifestRenderer.OverlayInvalid));
        Assert.That(e.Message, Does.Contain("namespace 'Not_A_Namespace'")
            .And.Contain("parameter 'privileged' is not declared by the delivery")
            .And.Contain("parameter 'replicas': '010' is not a number of replicas (0 to 1000, no leading zeros)")
            .And.Contain("parameter 'memory': 'lots' is not a memory quantity")
            .And.Contain("uses the engine's prefix")
            .And.Contain("image 'web' is not pinned by digest"));
    }

    [Test]
    public void Manifests_that_break_the_rules_are_not_rendered_and_every_violation_is_named()
    {
        using var tree = Tree();
        File.WriteAllText(tree.Combine("deploy", "deployment.yaml"), Pipeline.Tests.Checkup.Manifests.ManifestTestData.GoodDeployment
            .Replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: true\n            privileged: true")
            .Replace("image: web", "image: nginx"));
        var spec = Spec(tree);
        var e = Assert.Throws<ManifestCheckException>(() => ManifestRenderer.Render(spec, tree.Path, Overlay, Pinned, Delivery))!;
        Assert.That(e.Code, Is.EqualTo("DEPLOY-MANIFEST-REJECTED"));
        Assert.That(e.Violations.Select(v => (v.Code, v.File, v.Line)), Is.EquivalentTo(new[]
        {
            (ManifestCodes.ImageForeign, "deployment.yaml", 25), (ManifestCodes.Privileged, "deployment.yaml", 39),
        }));
        Assert.That(ManifestRenderer.Check(spec, tree.Path, ["web", "web-tests"], ManifestPolicy.Restricted).Select(v => v.Code),
            Is.EquivalentTo(new[] { ManifestCodes.ImageForeign, ManifestCodes.Privileged }));
    }

    [Test]
    public void A_parameter_whose_target_is_missing_is_a_violation_of_the_manifests()
    {
        using var tree = Tree();
        File.WriteAllText(tree.Combine("deploy", "ingress.yaml"), Pipeline.Tests.Checkup.Manifests.ManifestTestData.GoodIngress.Replace("name: web\n", "name: other\n"));
        var spec = Spec(tree);
        var v = ManifestRenderer.Check(spec, tree.Path, ["web", "web-tests"], ManifestPolicy.Restricted);
        Assert.That(v.Select(x => x.Code).Distinct(), Is.EqualTo(new[] { ManifestRenderer.TargetMissing }));
        Assert.That(v[0].Message, Does.Contain("parameter 'host' targets Ingress 'web' spec.rules[0].host: there is no Ingress 'web' in the manifests"));
        Assert.Throws<ManifestCheckException>(() => ManifestRenderer.Render(spec, tree.Path, Overlay, Pinned, Delivery));
    }

    /// <summary>Each document as one canonical string: keys sorted, scalars typed the way a YAML 1.1 reader types them.</summary>
    private static List<string> Canonical(string yaml)
    {
        var s = new YamlStream();
        s.Load(new StringReader(yaml));
        return s.Documents.Select(d => Canon(d.RootNode)).ToList();
    }

    private static string Canon(YamlNode n) => n switch
    {
        YamlMappingNode m => "{" + string.Join(",", m.Children.Select(e => ((YamlScalarNode)e.Key).Value + "=" + Canon(e.Value)).Order(StringComparer.Ordinal)) + "}",
        YamlSequenceNode q => "[" + string.Join(",", q.Children.Select(Canon)) + "]",
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } p => p.Value switch
        {
            "true" or "false" => "b:" + p.Value,
            "" or "null" or "~" or null => "null",
            var v when long.TryParse(v, out _) => "i:" + v,
            var v => "s:" + v,
        },
        YamlScalarNode x => "s:" + x.Value,
        _ => "?",
    };
}
