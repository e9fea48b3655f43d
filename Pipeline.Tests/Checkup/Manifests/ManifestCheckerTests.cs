using Pipeline.Checkup.Manifests;
using static Pipeline.Tests.Checkup.Manifests.ManifestTestData;

namespace Pipeline.Tests.Checkup.Manifests;

public class ManifestCheckerTests
{
    [Test]
    public void Manifests_that_follow_the_restricted_standard_pass()
    {
        var docs = Parse("app.yaml", string.Join("\n---\n", GoodDeployment, GoodService, GoodConfigMap, GoodIngress));
        Assert.That(docs, Has.Count.EqualTo(4));
        Assert.That(ManifestChecker.Check(docs, ManifestPolicy.Restricted, new ImageRule.DeclaredNames(["web"])), Is.Empty);
    }

    [Test]
    public void Every_restricted_control_broken_once_is_reported_at_once_with_file_line_and_code()
    {
        var violations = Check(EveryControlBroken);
        var expected = Expected(EveryControlBroken);
        Assert.That(expected, Has.Count.EqualTo(17), "the fixture marks each control once");
        Assert.That(violations.Select(v => v.File).Distinct(), Is.EqualTo(new[] { "app.yaml" }));
        Assert.That(violations.Select(v => (v.Code, v.Line)).OrderBy(x => x.Line),
            Is.EqualTo(expected.OrderBy(x => x.Line)), string.Join("\n", violations));
        Assert.That(violations.Single(v => v.Code == ManifestCodes.HostPath).Message, Does.Contain("volume 'host' is a hostPath volume"));
        Assert.That(violations.Single(v => v.Code == ManifestCodes.CapabilitiesAdd).Message, Does.Contain("'SYS_ADMIN' may not be added"));
        Assert.That(violations.Single(v => v.Code == ManifestCodes.Sysctls).Message, Does.Contain("'kernel.msgmax'"));
    }

    [Test]
    public void Read_only_root_is_only_demanded_where_the_policy_says_so()
    {
        var yaml = GoodDeployment.Replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false");
        Assert.That(Check(yaml).Select(v => v.Code), Is.EqualTo(new[] { ManifestCodes.ReadOnlyRoot }));
        Assert.That(Check(yaml, ManifestPolicy.Restricted with { RequireReadOnlyRootFilesystem = false }), Is.Empty);
    }

    [Test]
    public void A_container_without_security_context_misses_every_required_setting()
    {
        var yaml = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: bare
            spec:
              containers:
                - name: web
                  image: web
            """;
        var v = Check(yaml, ManifestPolicy.Restricted with { AllowedKinds = ["Pod"] });
        Assert.That(v.Select(x => x.Code), Is.EquivalentTo(new[]
        {
            ManifestCodes.PrivilegeEscalation, ManifestCodes.CapabilitiesDrop, ManifestCodes.Seccomp, ManifestCodes.RunAsNonRoot, ManifestCodes.ReadOnlyRoot,
        }));
        Assert.That(v.Select(x => x.Line).Distinct(), Is.EqualTo(new[] { 7 }), "the container's line");
    }

    [Test]
    public void Values_are_read_as_kubectl_reads_them_and_anything_unclear_fails_closed()
    {
        // YAML 1.1: 'yes' is true for kubectl; a quoted "false" is not false; 0x0 is root.
        var yaml = GoodDeployment
            .Replace("      volumes:", "      hostPID: yes\n      volumes:")
            .Replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: \"false\"\n            runAsUser: 0x0");
        var codes = Check(yaml).Select(v => v.Code).ToList();
        Assert.That(codes, Is.EquivalentTo(new[] { ManifestCodes.HostNamespaces, ManifestCodes.PrivilegeEscalation, ManifestCodes.RunAsUserRoot }));
    }

    [TestCase("Job", "spec.template")]
    [TestCase("CronJob", "spec.jobTemplate.spec.template")]
    [TestCase("StatefulSet", "spec.template")]
    [TestCase("DaemonSet", "spec.template")]
    [TestCase("Pod", "")]
    public void Every_pod_template_is_checked_including_init_and_ephemeral_containers(string kind, string templatePath)
    {
        var depth = templatePath.Length == 0 ? 0 : templatePath.Split('.').Length;
        var pad = new string(' ', 2 * depth);
        var head = string.Concat(templatePath.Split('.', StringSplitOptions.RemoveEmptyEntries).Select((k, i) => new string(' ', 2 * i) + k + ":\n"));
        var yaml = $"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: x\n{head}{pad}spec:\n"
            + $"{pad}  containers:\n{pad}  - name: a\n{pad}    image: nginx:latest\n{pad}    securityContext: {{privileged: true}}\n"
            + $"{pad}  initContainers:\n{pad}  - name: b\n{pad}    image: web\n{pad}    securityContext: {{runAsUser: 0}}\n"
            + $"{pad}  ephemeralContainers:\n{pad}  - name: c\n{pad}    image: web\n{pad}    securityContext: {{procMount: Unmasked}}\n";
        var v = Check(yaml, ManifestPolicy.Restricted with { AllowedKinds = [kind] });
        var codes = v.Select(x => x.Code).ToList();
        Assert.That(codes, Does.Contain(ManifestCodes.Privileged).And.Contain(ManifestCodes.RunAsUserRoot)
            .And.Contain(ManifestCodes.ProcMount).And.Contain(ManifestCodes.ImageForeign), string.Join("\n", v));
        Assert.That(v.Single(x => x.Code == ManifestCodes.ProcMount).Message, Does.Contain("ephemeralContainer 'c'"));
    }

    [Test]
    public void Only_allowed_kinds_pass()
    {
        var yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: admin\nroleRef: {kind: ClusterRole, name: cluster-admin}\n";
        var v = Check(yaml);
        Assert.That(v.Select(x => (x.Code, x.Line)), Is.EqualTo(new[] { (ManifestCodes.KindNotAllowed, 2) }));
        Assert.That(v[0].Message, Does.Contain("kind 'ClusterRoleBinding' is not allowed"));
        Assert.That(Check(yaml, ManifestPolicy.Restricted with { AllowedKinds = ["ClusterRoleBinding"] }), Is.Empty);

        // A List would carry objects past the per-object checks: never accepted, whatever the policy.
        var list = "apiVersion: v1\nkind: List\nitems: []\nmetadata: {name: l}\n";
        Assert.That(Check(list, ManifestPolicy.Restricted with { AllowedKinds = ["List"] }).Select(x => (x.Code, x.Line)),
            Is.EqualTo(new[] { (ManifestCodes.KindNotAllowed, 2) }));
    }

    [Test]
    public void Objects_must_be_named_once_and_well_formed()
    {
        var yaml = GoodService + "\n---\n" + GoodService + "\n---\nkind: Service\nmetadata:\n  name: Bad_Name\n---\napiVersion: v1\nmetadata: {name: x}\n";
        var v = Check(yaml);
        Assert.That(v.Select(x => (x.Code, x.Line)), Is.EquivalentTo(new[]
        {
            (ManifestCodes.DuplicateObject, 14), (ManifestCodes.NotAnObject, 21), (ManifestCodes.NotAnObject, 23), (ManifestCodes.NotAnObject, 25),
        }), string.Join("\n", v));
    }

    [Test]
    public void Supplier_images_must_be_the_names_delivery_yaml_declares()
    {
        var yaml = GoodDeployment.Replace("image: web", "image: docker.io/library/nginx:latest")
            + "\n---\n" + GoodDeployment.Replace("name: web\n", "name: web2\n").Replace("image: web", "image: web@sha256:" + new string('a', 64))
            + "\n---\n" + GoodDeployment.Replace("name: web\n", "name: web3\n").Replace("image: web", "image: \"\"");
        var v = Check(yaml);
        Assert.That(v.Select(x => x.Code), Is.EqualTo(new[] { ManifestCodes.ImageForeign, ManifestCodes.ImageForeign, ManifestCodes.ImageMissing }), string.Join("\n", v));
        Assert.That(v[0].Message, Does.Contain("'docker.io/library/nginx:latest' is not one of this delivery's images").And.Contain("(web, web-tests)"));
    }

    [Test]
    public void Rendered_images_must_be_this_deliverys_promoted_digests()
    {
        var rule = new ImageRule.Pinned([Pinned]);
        Assert.That(Check(GoodDeployment.Replace("image: web", "image: " + Pinned), images: rule), Is.Empty);
        var unpinned = Check(GoodDeployment.Replace("image: web", "image: 127.0.0.1:5000/stage/web:1.0"), images: rule);
        Assert.That(unpinned.Select(x => (x.Code, x.Line)), Is.EqualTo(new[] { (ManifestCodes.ImageUnpinned, 25) }));
        var other = Check(GoodDeployment.Replace("image: web", "image: " + Pinned[..^1] + "0"), images: rule);
        Assert.That(other.Select(x => x.Code), Is.EqualTo(new[] { ManifestCodes.ImageForeign }));
    }
}
