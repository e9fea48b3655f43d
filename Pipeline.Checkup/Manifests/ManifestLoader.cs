namespace Pipeline.Checkup.Manifests;

/// <summary>The documents read from a manifests folder and every problem found while reading it.</summary>
/// <param name="Files">The manifest files used, relative to the folder, in the order they were read.</param>
public sealed record LoadedManifests(IReadOnlyList<string> Files, IReadOnlyList<ManifestDocument> Documents, IReadOnlyList<ManifestViolation> Violations);

/// <summary>
/// Reads a supplier's manifests folder: a plain folder (every <c>*.yaml</c>/<c>*.yml</c> file directly in
/// it, by name; nothing else may be there) or a kustomize base (a <c>kustomization.yaml</c> using only the
/// safe subset: <c>resources:</c> naming local files in the folder). Symbolic links, remote bases,
/// generators, patches, transformers, plugins and helm charts are refused with a code.
/// </summary>
public static class ManifestLoader
{
    public const int MaxFiles = 200;
    public const long MaxTotalBytes = 8L * 1024 * 1024;

    public static readonly IReadOnlyList<string> KustomizationNames = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

    /// <summary>True when <paramref name="folder"/> is a kustomize base (holds a kustomization file).</summary>
    public static bool IsKustomizeBase(string folder) => KustomizationNames.Any(n => File.Exists(Path.Combine(folder, n)) || IsLink(Path.Combine(folder, n)));

    public static LoadedManifests Load(string folder)
    {
        var violations = new List<ManifestViolation>();
        var files = new List<string>();
        var info = new DirectoryInfo(folder);
        if (!info.Exists || info.LinkTarget is not null)
        {
            violations.Add(new(ManifestCodes.NoManifests, ".", 0, 0, "the manifests folder does not exist or is a symbolic link"));
            return new([], [], violations);
        }

        var entries = info.EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false })
            .Take(10 * MaxFiles + 1).ToList();
        foreach (var e in entries.Where(e => e.LinkTarget is not null).OrderBy(e => e.FullName, StringComparer.Ordinal))
            violations.Add(new(ManifestCodes.Symlink, Rel(folder, e.FullName), 0, 0, "symbolic links are not accepted in the manifests folder"));
        if (entries.Count > 10 * MaxFiles)
            violations.Add(new(ManifestCodes.TooLarge, ".", 0, 0, $"the manifests folder holds more than {10 * MaxFiles} entries"));

        var kustomizations = KustomizationNames.Where(n => File.Exists(Path.Combine(folder, n))).ToList();
        if (kustomizations.Count > 1)
            violations.Add(new(ManifestCodes.KustomizeFeature, kustomizations[1], 1, 1, $"more than one kustomization file ({string.Join(", ", kustomizations)}); keep one"));
        if (kustomizations.Count > 0) files.AddRange(KustomizeResources(folder, kustomizations[0], violations));
        else
        {
            foreach (var e in entries.Where(e => e.LinkTarget is null).OrderBy(e => e.FullName, StringComparer.Ordinal))
            {
                var rel = Rel(folder, e.FullName);
                if (e is FileInfo && !rel.Contains('/') && (rel.EndsWith(".yaml", StringComparison.Ordinal) || rel.EndsWith(".yml", StringComparison.Ordinal)))
                    files.Add(rel);
                else if (!rel.Contains('/') || e is FileInfo)
                    violations.Add(new(ManifestCodes.StrayFile, rel, 0, 0,
                        "a plain manifests folder may only hold *.yaml / *.yml files (no subfolders or other files); use a kustomization.yaml to pick files"));
            }
        }

        if (files.Count == 0 && violations.Count == 0)
            violations.Add(new(ManifestCodes.NoManifests, ".", 0, 0, "the manifests folder holds no manifests"));
        if (files.Count > MaxFiles)
        {
            violations.Add(new(ManifestCodes.TooLarge, ".", 0, 0, $"more than {MaxFiles} manifest files"));
            return new(files, [], violations);
        }

        var docs = new List<ManifestDocument>();
        long total = 0;
        foreach (var rel in files)
        {
            var full = Path.Combine(folder, rel);
            var fi = new FileInfo(full);
            if (fi.LinkTarget is not null || !fi.Exists) continue; // reported above
            total += fi.Length;
            if (fi.Length > ManifestYaml.MaxFileBytes || total > MaxTotalBytes)
            {
                violations.Add(new(ManifestCodes.TooLarge, rel, 1, 1, fi.Length > ManifestYaml.MaxFileBytes
                    ? $"the file is larger than {ManifestYaml.MaxFileBytes} bytes" : $"the manifests are larger than {MaxTotalBytes} bytes in all"));
                continue;
            }

            docs.AddRange(ManifestYaml.Parse(rel, ReadUtf8(full, rel, violations), violations));
        }

        return new(files, docs, violations);
    }

    private static IEnumerable<string> KustomizeResources(string folder, string kustomization, List<ManifestViolation> violations)
    {
        var full = Path.Combine(folder, kustomization);
        if (IsLink(full)) return [];
        var fi = new FileInfo(full);
        if (fi.Length > ManifestYaml.MaxFileBytes)
        {
            violations.Add(new(ManifestCodes.TooLarge, kustomization, 1, 1, $"the file is larger than {ManifestYaml.MaxFileBytes} bytes"));
            return [];
        }

        var docs = ManifestYaml.Parse(kustomization, ReadUtf8(full, kustomization, violations), violations);
        if (docs.Count != 1)
        {
            if (docs.Count > 1) violations.Add(new(ManifestCodes.KustomizeFeature, kustomization, 1, 1, "a kustomization file holds exactly one document"));
            return [];
        }

        var k = docs[0].Root;
        var result = new List<string>();
        foreach (var (key, value) in k.Entries)
        {
            void Add(string code, ManifestNode at, string message) => violations.Add(new(code, kustomization, at.Line, at.Column, message));
            switch (key.Value)
            {
                case "apiVersion":
                    if ((value as ManifestScalar)?.Value is not ("kustomize.config.k8s.io/v1beta1" or "kustomize.config.k8s.io/v1"))
                        Add(ManifestCodes.KustomizeFeature, value, "apiVersion must be kustomize.config.k8s.io/v1beta1");
                    break;
                case "kind":
                    if ((value as ManifestScalar)?.Value is not "Kustomization")
                        Add(ManifestCodes.KustomizeFeature, value, "kind must be Kustomization (components are not accepted)");
                    break;
                case "resources":
                    if (value is not ManifestSequence seq)
                    {
                        Add(ManifestCodes.KustomizeResource, value, "resources must be a list of local files");
                        break;
                    }

                    foreach (var item in seq.Items)
                    {
                        var r = (item as ManifestScalar)?.Value ?? "";
                        if (r.Contains("://", StringComparison.Ordinal) || r.Contains("?ref=", StringComparison.Ordinal) || r.StartsWith("github.com/", StringComparison.Ordinal)
                            || r.StartsWith("git@", StringComparison.Ordinal) || r.StartsWith("ssh:", StringComparison.Ordinal))
                            Add(ManifestCodes.KustomizeRemote, item, $"remote resource '{ManifestYaml.Short(r)}' is not allowed; ship the files in the delivery");
                        else if (!IsSafeRelative(r))
                            Add(ManifestCodes.KustomizeResource, item, $"resource '{ManifestYaml.Short(r)}' must be a relative path inside the manifests folder (no '..', no leading '/')");
                        else if (Directory.Exists(Path.Combine(folder, r)))
                            Add(ManifestCodes.KustomizeResource, item, $"resource '{r}' is a folder (a nested base); list its files instead");
                        else if (!File.Exists(Path.Combine(folder, r)) || IsLink(Path.Combine(folder, r)))
                            Add(ManifestCodes.KustomizeResource, item, $"resource '{r}' does not exist in the manifests folder (or is a symbolic link)");
                        else if (result.Contains(r))
                            Add(ManifestCodes.KustomizeResource, item, $"resource '{r}' is listed twice");
                        else
                            result.Add(r);
                    }
                    break;
                default:
                    Add(ManifestCodes.KustomizeFeature, key, $"kustomize feature '{ManifestYaml.Short(key.Value)}' is not accepted in a delivery (only local resources:); the operator's overlay adapts namespace, images and parameters");
                    break;
            }
        }

        return result;
    }

    private static string ReadUtf8(string full, string rel, List<ManifestViolation> violations)
    {
        try
        {
            return new System.Text.UTF8Encoding(false, true).GetString(File.ReadAllBytes(full));
        }
        catch (System.Text.DecoderFallbackException)
        {
            violations.Add(new(ManifestCodes.InvalidYaml, rel, 1, 1, "the file is not valid UTF-8"));
            return "";
        }
    }

    internal static bool IsSafeRelative(string p) =>
        p.Length > 0 && !p.StartsWith('/') && !p.Contains('\\') && !p.Contains('\0')
        && p.Split('/').All(s => s.Length > 0 && s != "." && s != "..");

    private static bool IsLink(string path) => new FileInfo(path).LinkTarget is not null;

    private static string Rel(string folder, string full) => Path.GetRelativePath(folder, full).Replace('\\', '/');
}
