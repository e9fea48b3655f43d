using Pipeline.Checkup.Manifests;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Checkup.Manifests.ManifestTestData;

namespace Pipeline.Tests.Checkup.Manifests;

public class ManifestLoaderTests
{
    [Test]
    public void A_plain_folder_is_read_file_by_file_in_name_order()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("20-service.yml"), GoodService);
        File.WriteAllText(dir.Combine("10-deployment.yaml"), GoodDeployment + "\n---\n" + GoodConfigMap);
        var loaded = ManifestLoader.Load(dir.Path);
        Assert.That(loaded.Violations, Is.Empty);
        Assert.That(loaded.Files, Is.EqualTo(new[] { "10-deployment.yaml", "20-service.yml" }));
        Assert.That(loaded.Documents.Select(d => (d.File, d.Index, d.Kind)), Is.EqualTo(new[]
        {
            ("10-deployment.yaml", 0, "Deployment"), ("10-deployment.yaml", 1, "ConfigMap"), ("20-service.yml", 0, "Service"),
        }));
        Assert.That(ManifestLoader.IsKustomizeBase(dir.Path), Is.False);
    }

    [Test]
    public void A_plain_folder_refuses_symlinks_subfolders_and_other_files()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("app.yaml"), GoodService);
        File.WriteAllText(dir.Combine("notes.txt"), "x");
        Directory.CreateDirectory(dir.Combine("more"));
        File.CreateSymbolicLink(dir.Combine("passwd.yaml"), "/etc/passwd");
        var v = ManifestLoader.Load(dir.Path).Violations;
        Assert.That(v.Select(x => (x.Code, x.File)), Is.EquivalentTo(new[]
        {
            (ManifestCodes.Symlink, "passwd.yaml"), (ManifestCodes.StrayFile, "more"), (ManifestCodes.StrayFile, "notes.txt"),
        }), string.Join("\n", v));
    }

    [Test]
    public void A_kustomize_base_reads_only_its_local_resources()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Combine("apps"));
        File.WriteAllText(dir.Combine("apps", "web.yaml"), GoodDeployment);
        File.WriteAllText(dir.Combine("service.yaml"), GoodService);
        File.WriteAllText(dir.Combine("README.md"), "not a manifest");
        File.WriteAllText(dir.Combine("kustomization.yaml"), "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - service.yaml\n  - apps/web.yaml\n");
        var loaded = ManifestLoader.Load(dir.Path);
        Assert.That(loaded.Violations, Is.Empty);
        Assert.That(ManifestLoader.IsKustomizeBase(dir.Path), Is.True);
        Assert.That(loaded.Files, Is.EqualTo(new[] { "service.yaml", "apps/web.yaml" }));
    }

    [Test]
    public void Kustomize_features_beyond_local_resources_are_refused_each_with_code_and_line()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.Combine("nested"));
        File.WriteAllText(dir.Combine("service.yaml"), GoodService);
        File.WriteAllText(dir.Combine("kustomization.yaml"), """
            apiVersion: kustomize.config.k8s.io/v1beta1
            kind: Kustomization
            resources:
              - service.yaml
              - https://github.com/example/evil//base?ref=main
              - github.com/example/evil/base
              - ../outside.yaml
              - /etc/kubernetes/admin.yaml
              - nested
              - missing.yaml
            namePrefix: x-
            patches:
              - path: patch.yaml
            configMapGenerator:
              - name: c
                files: [/etc/shadow]
            secretGenerator:
              - name: s
                envs: [../../.env]
            generators: [gen.yaml]
            transformers: [t.yaml]
            helmCharts:
              - name: evil
                repo: https://charts.example.test
            components: [../c]
            images:
              - name: web
                newName: evil/web
            """);
        var v = ManifestLoader.Load(dir.Path).Violations;
        Assert.That(v.All(x => x.File == "kustomization.yaml"));
        Assert.That(v.Select(x => (x.Code, x.Line)), Is.EquivalentTo(new[]
        {
            (ManifestCodes.KustomizeRemote, 5), (ManifestCodes.KustomizeRemote, 6),
            (ManifestCodes.KustomizeResource, 7), (ManifestCodes.KustomizeResource, 8), (ManifestCodes.KustomizeResource, 9), (ManifestCodes.KustomizeResource, 10),
            (ManifestCodes.KustomizeFeature, 11), (ManifestCodes.KustomizeFeature, 12), (ManifestCodes.KustomizeFeature, 14), (ManifestCodes.KustomizeFeature, 17),
            (ManifestCodes.KustomizeFeature, 20), (ManifestCodes.KustomizeFeature, 21), (ManifestCodes.KustomizeFeature, 22), (ManifestCodes.KustomizeFeature, 25),
            (ManifestCodes.KustomizeFeature, 26),
        }), string.Join("\n", v));
        Assert.That(v.Single(x => x.Line == 22).Message, Does.Contain("kustomize feature 'helmCharts' is not accepted"));
    }

    [Test]
    public void Violations_from_every_file_come_together()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.Combine("a.yaml"), "a: 1\na: 2\n");
        File.WriteAllText(dir.Combine("b.yaml"), "x: &y 1\n");
        File.WriteAllBytes(dir.Combine("c.yaml"), [0xff, 0xfe, 0x00]);
        File.WriteAllText(dir.Combine("d.yaml"), new string('#', ManifestYaml.MaxFileBytes + 1));
        var v = ManifestLoader.Load(dir.Path).Violations;
        Assert.That(v.Select(x => (x.Code, x.File)), Is.EquivalentTo(new[]
        {
            (ManifestCodes.YamlDuplicateKey, "a.yaml"), (ManifestCodes.YamlAlias, "b.yaml"), (ManifestCodes.InvalidYaml, "c.yaml"), (ManifestCodes.TooLarge, "d.yaml"),
        }), string.Join("\n", v));
    }
}
