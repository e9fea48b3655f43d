using System.Security.Cryptography;
using System.Text;
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

    /// <summary>Checks the supplier's manifests (images by the names delivery.yaml declares) without rendering; every violation at once.</summary>
    public static IReadOnlyList<ManifestViolation> Check(DeploymentSpec spec, string deliveryRoot, IReadOnlyCollection<string> imageNames, ManifestPolicy rules) =>
        throw new NotImplementedException();

    /// <param name="pinnedImages">Image name (as delivery.yaml declares it) → <c>registry/repo@sha256:…</c> of the promoted digest.</param>
    /// <exception cref="ManifestCheckException">the manifests break the rules (all violations).</exception>
    /// <exception cref="PipelineException">DEPLOY-SPEC-... when the overlay is not valid for this delivery.</exception>
    public static RenderedManifests Render(
        DeploymentSpec spec,
        string deliveryRoot,
        StageOverlay overlay,
        IReadOnlyDictionary<string, string> pinnedImages,
        RenderedDelivery delivery) =>
        throw new NotImplementedException();

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
