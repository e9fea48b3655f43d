using Pipeline.Checkup.Manifests;

namespace Pipeline.Engine.Deploy;

/// <summary>
/// The operator's adaptation of a delivery's manifests to one stage. Comes from the operator's stage
/// configuration, never from the delivery.
/// </summary>
/// <param name="Namespace">Set on every namespaced object (a DNS label).</param>
/// <param name="Parameters">Values for parameters the delivery declared (name → value); undeclared names are an error.</param>
/// <param name="Labels">Extra labels put on every object (and pod template) next to the delivery's labels.</param>
public sealed record StageOverlay(
    string Namespace,
    IReadOnlyDictionary<string, string> Parameters,
    IReadOnlyDictionary<string, string> Labels)
{
    /// <summary>The operator's rules the manifests are checked against, before and after rendering.</summary>
    public ManifestPolicy Rules { get; init; } = ManifestPolicy.Restricted;
}

/// <summary>Which delivery is rendered for which stage: becomes the labels naming the delivery on every object.</summary>
public sealed record RenderedDelivery(Guid DeliveryId, string Pipeline, string Tag, string Stage);

/// <summary>
/// Rendered plain manifests for one stage: file name → exact bytes (one object per file, sorted,
/// plus a <c>kustomization.yaml</c> listing them so <c>kubectl kustomize</c> builds the folder).
/// Same inputs, same bytes.
/// </summary>
public sealed record RenderedManifests(IReadOnlyDictionary<string, byte[]> Files)
{
    public const string KustomizationFile = "kustomization.yaml";

    /// <summary><c>sha256:</c> over every file name and content in order: names what was rendered in evidence.</summary>
    public string Digest => ManifestRenderer.DigestOf(Files);

    /// <summary>Writes every file into <paramref name="folder"/> (created when missing; other files are left alone).</summary>
    public void WriteTo(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var (name, bytes) in Files) File.WriteAllBytes(Path.Combine(folder, name), bytes);
    }
}
