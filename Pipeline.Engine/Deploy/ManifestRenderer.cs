using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Checkup.Manifests;
using Pipeline.Engine.Definitions;

namespace Pipeline.Engine.Deploy;

/// <summary>
/// Renders the delivery's manifests for one stage: the operator's namespace on every namespaced
/// object, declared parameters substituted where declared (defaults otherwise), every image replaced
/// by the promoted <c>registry/repo@sha256:…</c>, labels naming the delivery. The supplier's manifests
/// are checked against the stage's rules before, and the result again after; any violation throws
/// <see cref="ManifestCheckException"/> with all of them.
/// </summary>
public static class ManifestRenderer
{
    /// <summary>Label keys put on every object and pod template.</summary>
    public const string LabelPrefix = "delivery.pipeline.example/";

    /// <summary>The operator's overlay does not fit the delivery (undeclared parameter, bad value, bad namespace or label).</summary>
    public const string OverlayInvalid = "DEPLOY-SPEC-OVERLAY-INVALID";

    /// <summary>A parameter's target does not exist in the manifests.</summary>
    public const string TargetMissing = "DEPLOY-MANIFEST-PARAMETER-TARGET";

    private static readonly Regex DnsLabel = new("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex LabelKey = new(@"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex LabelValue = new("^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", RegexOptions.CultureInvariant);
    private static readonly Regex PinnedReference = new("^[a-z0-9.-]+(:[0-9]{1,5})?/[a-z0-9._/-]+@sha256:[0-9a-f]{64}$", RegexOptions.CultureInvariant);

    /// <summary>Kinds without a namespace (everything else gets the stage's namespace).</summary>
    private static readonly HashSet<string> ClusterScoped =
    [
        "Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass", "CustomResourceDefinition",
        "PriorityClass", "IngressClass", "RuntimeClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
        "APIService", "CSIDriver", "VolumeSnapshotClass", "Node",
    ];

    /// <summary>Checks the supplier's manifests (images by the names delivery.yaml declares) without rendering; every violation at once.</summary>
    public static IReadOnlyList<ManifestViolation> Check(DeploymentSpec spec, string deliveryRoot, IReadOnlyCollection<string> imageNames, ManifestPolicy rules)
    {
        var loaded = ManifestLoader.Load(Path.Combine(deliveryRoot, spec.Manifests.Folder));
        var all = loaded.Violations.Concat(ManifestChecker.Check(loaded.Documents, rules, new ImageRule.DeclaredNames(imageNames))).ToList();
        if (all.Count == 0) all.AddRange(ApplyParameters(spec, loaded.Documents, new Dictionary<string, string>()));
        return all;
    }

    /// <param name="pinnedImages">Image name (as delivery.yaml declares it) → <c>registry/repo@sha256:…</c> of the promoted digest.</param>
    /// <exception cref="ManifestCheckException">the manifests break the rules (all violations).</exception>
    /// <exception cref="PipelineException">DEPLOY-SPEC-OVERLAY-INVALID when the overlay is not valid for this delivery.</exception>
    public static RenderedManifests Render(
        DeploymentSpec spec,
        string deliveryRoot,
        StageOverlay overlay,
        IReadOnlyDictionary<string, string> pinnedImages,
        RenderedDelivery delivery)
    {
        CheckOverlay(spec, overlay, pinnedImages);
        var loaded = ManifestLoader.Load(Path.Combine(deliveryRoot, spec.Manifests.Folder));
        var violations = loaded.Violations.Concat(ManifestChecker.Check(loaded.Documents, overlay.Rules, new ImageRule.DeclaredNames(pinnedImages.Keys.ToList()))).ToList();
        if (violations.Count > 0) throw new ManifestCheckException(violations);

        var docs = loaded.Documents;
        violations.AddRange(ApplyParameters(spec, docs, overlay.Parameters));
        if (violations.Count > 0) throw new ManifestCheckException(violations);

        var labels = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in overlay.Labels) labels[k] = v;
        labels[LabelPrefix + "delivery"] = delivery.DeliveryId.ToString("D");
        labels[LabelPrefix + "pipeline"] = LabelSafe(delivery.Pipeline);
        labels[LabelPrefix + "tag"] = LabelSafe(delivery.Tag);
        labels[LabelPrefix + "stage"] = LabelSafe(delivery.Stage);

        foreach (var doc in docs)
        {
            var meta = doc.Root.GetOrAddMap("metadata");
            if (!ClusterScoped.Contains(doc.Kind!)) meta.Set("namespace", new ManifestScalar(overlay.Namespace, true));
            AddLabels(meta, labels);
            foreach (var (templateMeta, podSpec) in ManifestChecker.PodTemplates(doc))
            {
                AddLabels(templateMeta, labels);
                foreach (var c in ManifestChecker.Containers(podSpec))
                    c.Set("image", new ManifestScalar(pinnedImages[c.Text("image")!], true));
            }
        }

        violations.AddRange(ManifestChecker.Check(docs, overlay.Rules, new ImageRule.Pinned(pinnedImages.Values.ToList())));
        if (violations.Count > 0) throw new ManifestCheckException(violations);

        var files = new SortedDictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var doc in docs)
            files[$"{doc.Kind!.ToLowerInvariant()}-{doc.Name}.yaml"] = Encoding.UTF8.GetBytes(ManifestYamlWriter.Write(doc.Root));
        files[RenderedManifests.KustomizationFile] = Encoding.UTF8.GetBytes(Kustomization(files.Keys));
        return new RenderedManifests(files);
    }

    private static string Kustomization(IEnumerable<string> resources)
    {
        var root = new ManifestMapping();
        root.Set("apiVersion", new ManifestScalar("kustomize.config.k8s.io/v1beta1", false));
        root.Set("kind", new ManifestScalar("Kustomization", false));
        var list = new ManifestSequence();
        list.Items.AddRange(resources.Select(r => new ManifestScalar(r, true)));
        root.Set("resources", list);
        return ManifestYamlWriter.Write(root);
    }

    private static void AddLabels(ManifestMapping meta, IReadOnlyDictionary<string, string> labels)
    {
        var map = meta.GetOrAddMap("labels");
        foreach (var (k, v) in labels) map.Set(k, new ManifestScalar(v, true));
    }

    /// <summary>Sets every declared parameter (overlay value or default) at its targets; returns the targets that do not exist.</summary>
    private static List<ManifestViolation> ApplyParameters(DeploymentSpec spec, IReadOnlyList<ManifestDocument> docs, IReadOnlyDictionary<string, string> values)
    {
        var violations = new List<ManifestViolation>();
        foreach (var p in spec.Parameters)
        {
            var value = values.TryGetValue(p.Name, out var v) ? v : p.Default;
            foreach (var t in p.Targets)
            {
                var matches = docs.Where(d => d.Kind == t.Kind && d.Name == t.Name).ToList();
                var path = FieldPath.TryParse(t.Path);
                string? problem = matches.Count != 1 ? $"there is no {t.Kind} '{t.Name}' in the manifests"
                    : path is null ? $"'{t.Path}' is not a field path"
                    : path.SetIn(matches[0].Root, new ManifestScalar(value, p.Kind != ParameterKind.Replicas));
                if (problem is not null)
                    violations.Add(new(TargetMissing, matches.Count == 1 ? matches[0].File : DeliveryManifest.FileName, matches.Count == 1 ? matches[0].Root.Line : p.Line, 1,
                        $"parameter '{p.Name}' targets {t.Kind} '{t.Name}' {t.Path}: {problem}"));
            }
        }
        return violations;
    }

    private static void CheckOverlay(DeploymentSpec spec, StageOverlay overlay, IReadOnlyDictionary<string, string> pinnedImages)
    {
        var problems = new List<string>();
        if (!DnsLabel.IsMatch(overlay.Namespace)) problems.Add($"namespace '{overlay.Namespace}' is not a valid Kubernetes namespace (a lowercase DNS label)");
        foreach (var (name, value) in overlay.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (spec.Parameter(name) is not { } p) problems.Add($"parameter '{name}' is not declared by the delivery (declared: {string.Join(", ", spec.Parameters.Select(x => x.Name))})");
            else if (DeploymentSpecParser.CheckValue(p.Kind, value) is { } why) problems.Add($"parameter '{name}': {why}");
        }
        foreach (var (k, v) in overlay.Labels)
        {
            if (!LabelKey.IsMatch(k) || k.StartsWith(LabelPrefix, StringComparison.Ordinal)) problems.Add($"label key '{k}' is not valid (or uses the engine's prefix {LabelPrefix})");
            if (!LabelValue.IsMatch(v)) problems.Add($"label '{k}' has a value that is not a valid label value");
        }
        foreach (var (name, reference) in pinnedImages)
        {
            if (!PinnedReference.IsMatch(reference)) problems.Add($"image '{name}' is not pinned by digest: '{reference}'");
        }
        if (problems.Count > 0) throw new PipelineException(OverlayInvalid, "the stage's overlay does not fit the delivery: " + string.Join("; ", problems));
    }

    /// <summary>A label value from free text: disallowed characters become '_', at most 63 characters, alphanumeric at both ends.</summary>
    internal static string LabelSafe(string text)
    {
        var s = new string(text.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        if (s.Length > 63) s = s[..63];
        s = s.Trim('-', '_', '.');
        return s.Length == 0 ? "x" : s;
    }

    internal static string DigestOf(IReadOnlyDictionary<string, byte[]> files)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, bytes) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
        {
            h.AppendData(Encoding.UTF8.GetBytes(name + "\n" + bytes.Length + "\n"));
            h.AppendData(bytes);
        }
        return "sha256:" + Convert.ToHexStringLower(h.GetHashAndReset());
    }
}
