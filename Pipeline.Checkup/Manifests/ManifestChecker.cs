using System.Text.RegularExpressions;

namespace Pipeline.Checkup.Manifests;

/// <summary>
/// Checks a delivery's Kubernetes objects against the operator's rules: well-formed objects, only
/// allowed kinds, the Pod Security Standard "restricted" on every pod template (containers, init
/// and ephemeral containers) and every image one of this delivery's. Returns every violation.
/// </summary>
public static class ManifestChecker
{
    private static readonly Regex DnsSubdomain = new("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", RegexOptions.CultureInvariant);
    private static readonly Regex PinnedReference = new("^[a-z0-9.-]+(:[0-9]{1,5})?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$", RegexOptions.CultureInvariant);

    /// <summary>Where the pod spec is, by kind (object root → pod template holder).</summary>
    private static readonly Dictionary<string, string[]> PodTemplatePaths = new(StringComparer.Ordinal)
    {
        ["Pod"] = [],
        ["Deployment"] = ["spec", "template"],
        ["StatefulSet"] = ["spec", "template"],
        ["DaemonSet"] = ["spec", "template"],
        ["ReplicaSet"] = ["spec", "template"],
        ["ReplicationController"] = ["spec", "template"],
        ["Job"] = ["spec", "template"],
        ["CronJob"] = ["spec", "jobTemplate", "spec", "template"],
    };

    public static IReadOnlyList<ManifestViolation> Check(IReadOnlyList<ManifestDocument> documents, ManifestPolicy policy, ImageRule images)
    {
        var violations = new List<ManifestViolation>();
        var seen = new Dictionary<(string, string), ManifestDocument>();
        foreach (var doc in documents)
        {
            void Add(string code, ManifestNode at, string message) => violations.Add(new(code, doc.File, at.Line, at.Column, message));

            var kind = doc.Kind;
            var name = doc.Name;
            if (doc.ApiVersion is null) Add(ManifestCodes.NotAnObject, doc.Root, "the object has no apiVersion");
            if (kind is null) { Add(ManifestCodes.NotAnObject, doc.Root, "the object has no kind"); continue; }
            if (name is null) Add(ManifestCodes.NotAnObject, (ManifestNode?)doc.Root.Map("metadata") ?? doc.Root, $"the {kind} has no metadata.name");
            else if (name.Length > 253 || !DnsSubdomain.IsMatch(name))
                Add(ManifestCodes.NotAnObject, doc.Root.Map("metadata")!["name"]!, $"metadata.name '{ManifestYaml.Short(name)}' is not a valid Kubernetes name (lowercase DNS subdomain)");
            else if (!seen.TryAdd((kind, name), doc))
                Add(ManifestCodes.DuplicateObject, doc.Root.Map("metadata")!["name"]!, $"{kind} '{name}' is defined twice (also in {seen[(kind, name)].File})");

            if (kind.EndsWith("List", StringComparison.Ordinal))
                Add(ManifestCodes.KindNotAllowed, doc.Root["kind"]!, $"kind '{ManifestYaml.Short(kind)}' is a list of objects; write one object per YAML document");
            else if (!policy.AllowedKinds.Contains(kind, StringComparer.Ordinal))
                Add(ManifestCodes.KindNotAllowed, doc.Root["kind"]!, $"kind '{ManifestYaml.Short(kind)}' is not allowed; allowed: {string.Join(", ", policy.AllowedKinds)}");

            var where = $"{kind} '{name ?? "?"}'";
            foreach (var (holder, spec) in PodSpecs(doc, kind))
            {
                if (spec is null)
                {
                    Add(ManifestCodes.NoPodTemplate, holder ?? doc.Root, $"{where} has no pod template spec");
                    continue;
                }

                var podMeta = kind == "Pod" ? doc.Root.Map("metadata") : holder?.Map("metadata");
                new PodSecurityRestricted(doc.File, violations, policy).Check(spec, podMeta, where,
                    (container, cWhere) => CheckImage(container, cWhere, images, Add));
            }
        }

        return violations;
    }

    /// <summary>The pod specs of an object: known kinds by their path; other kinds when they carry a pod template anyway.</summary>
    private static IEnumerable<(ManifestMapping? Holder, ManifestMapping? Spec)> PodSpecs(ManifestDocument doc, string kind)
    {
        if (PodTemplatePaths.TryGetValue(kind, out var path))
        {
            var holder = Walk(doc.Root, path);
            yield return (holder, holder?.Map("spec"));
            yield break;
        }

        foreach (var p in new[] { PodTemplatePaths["Deployment"], PodTemplatePaths["CronJob"] })
        {
            if (Walk(doc.Root, p) is { } h && h.Map("spec") is { } s && (s.Has("containers") || s.Has("initContainers")))
                yield return (h, s);
        }
    }

    /// <summary>
    /// Every pod template of an object (its metadata, created when missing, and its pod spec) and every
    /// container in it: what the renderer labels and whose images it pins.
    /// </summary>
    public static IEnumerable<(ManifestMapping TemplateMetadata, ManifestMapping PodSpec)> PodTemplates(ManifestDocument doc)
    {
        if (doc.Kind is not { } kind) yield break;
        foreach (var (holder, spec) in PodSpecs(doc, kind))
        {
            if (spec is null) continue;
            yield return (kind == "Pod" ? doc.Root.GetOrAddMap("metadata") : holder!.GetOrAddMap("metadata"), spec);
        }
    }

    /// <summary>The containers, init containers and ephemeral containers of a pod spec.</summary>
    public static IEnumerable<ManifestMapping> Containers(ManifestMapping podSpec) =>
        new[] { "containers", "initContainers", "ephemeralContainers" }
            .SelectMany(l => podSpec.Seq(l)?.Items.OfType<ManifestMapping>() ?? []);

    private static ManifestMapping? Walk(ManifestMapping root, string[] path)
    {
        var m = root;
        foreach (var k in path)
        {
            m = m.Map(k);
            if (m is null) return null;
        }
        return m;
    }

    private static void CheckImage(ManifestMapping container, string where, ImageRule rule, Action<string, ManifestNode, string> add)
    {
        var node = container.Scalar("image");
        if (node is null || node.IsNull || node.Value.Length == 0)
        {
            add(ManifestCodes.ImageMissing, (ManifestNode?)container["image"] ?? container, $"{where} names no image");
            return;
        }

        var image = node.Value;
        switch (rule)
        {
            case ImageRule.DeclaredNames names when !names.Names.Contains(image):
                add(ManifestCodes.ImageForeign, node,
                    $"{where}: image '{ManifestYaml.Short(image)}' is not one of this delivery's images; refer to an image by the name delivery.yaml declares ({string.Join(", ", names.Names.Order(StringComparer.Ordinal))})");
                break;
            case ImageRule.Pinned when !PinnedReference.IsMatch(image):
                add(ManifestCodes.ImageUnpinned, node, $"{where}: image '{ManifestYaml.Short(image)}' is not pinned by digest (registry/repository@sha256:...)");
                break;
            case ImageRule.Pinned pinned when !pinned.References.Contains(image):
                add(ManifestCodes.ImageForeign, node, $"{where}: image '{ManifestYaml.Short(image)}' is not one this delivery built and promoted");
                break;
        }
    }
}
