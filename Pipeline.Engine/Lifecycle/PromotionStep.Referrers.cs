using System.Globalization;
using Pipeline.Engine.Runs;
using Pipeline.Registry;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Lifecycle;

public sealed partial class PromotionStep
{
    /// <summary>
    /// Attaches the promotion's signed statement (the DSSE envelope exactly as logged) to each
    /// promoted image in the target stage's repository as an OCI referrer, like the intake attaches
    /// its stage attestations: artifact type <c>application/vnd.dsse.envelope.v1+json</c>, annotations
    /// naming the step, the log index and the predicate type; where the registry has no referrers API
    /// the <c>sha256-&lt;hex&gt;</c> fallback index is extended. Later promotions copy it on with the image.
    /// </summary>
    /// <returns>Per repository, the referrer manifest's digest (and whether the fallback tag was used).</returns>
    /// <exception cref="RegistryException">The registry refused or failed.</exception>
    public async Task<IReadOnlyDictionary<string, string>> AttachStatementAsync(StageDefinition to, IReadOnlyList<DeliveryImage> images, string step, long logIndex,
        string predicateType, byte[] envelope, CancellationToken ct)
    {
        using var client = Client(to.Registry);
        var attached = new Dictionary<string, string>(StringComparer.Ordinal);
        var blob = new Descriptor(DeliveryRunner.DsseArtifactType, Digest.Compute(envelope), envelope.LongLength);
        foreach (var image in images)
        {
            var manifest = await client.GetManifestAsync(image.Repository, image.Digest, ct).ConfigureAwait(false);
            var subject = new Descriptor(manifest.MediaType, manifest.Digest, manifest.Bytes.LongLength);
            var result = await client.AttachArtifactAsync(image.Repository, subject, DeliveryRunner.DsseArtifactType, [(blob, envelope)], new Dictionary<string, string>
            {
                [DeliveryRunner.StageAnnotation] = step,
                [DeliveryRunner.LogIndexAnnotation] = logIndex.ToString(CultureInfo.InvariantCulture),
                ["in-toto.io/predicate-type"] = predicateType,
            }, ct).ConfigureAwait(false);
            attached[image.Repository] = result.ManifestDigest + (result.UsedFallbackTag ? " (tag fallback)" : "");
        }

        return attached;
    }
}
