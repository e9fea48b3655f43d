using System.Globalization;
using Pipeline.Engine.Sbom;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Pushes the built images (missing blobs only, then the manifests; with several platforms the
/// platform manifests by digest and the index under the tag) and attaches each platform image's
/// SPDX SBOM as an OCI 1.1 referrer (tag-schema fallback where the registry has no referrers API).
/// </summary>
public sealed class PushStage : IStage
{
    public string Name => "push";

    public async Task<StageOutcome> ExecuteAsync(DeliveryContext context, CancellationToken ct)
    {
        if (context.Images.Count == 0) throw new PipelineException("ENG-STAGE-ORDER", "push needs the build stage first");
        using var client = RegistryClients.Create(context.Settings);
        var host = context.Settings.Registry.Url.Authority;
        var evidence = StageOutcome.NewEvidence();
        foreach (var image in context.Images)
        {
            var result = await client.PushImageAsync(image.Repository, image.Tag, image.Image, new BlobStore(image.BlobStoreDir), image.BaseRepository, ct).ConfigureAwait(false);
            evidence[$"{image.Name}.blobs"] = string.Create(CultureInfo.InvariantCulture, $"uploaded {result.BlobsUploaded}, present {result.BlobsSkipped}, mounted {result.BlobsMounted}");
        }

        var builds = context.Builds;
        foreach (var build in builds)
        {
            if (build.Index is not null)
                await client.PushIndexAsync(build.Repository, TagOf(context), build.Index, ct).ConfigureAwait(false);
            foreach (var p in build.Platforms)
            {
                var attached = await client.AttachArtifactAsync(build.Repository, p.Image.ManifestDescriptor, SpdxSbom.MediaType,
                    [(p.SbomDescriptor, p.Sbom)], new Dictionary<string, string>
                    {
                        ["org.opencontainers.image.created"] = context.TagTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    }, ct).ConfigureAwait(false);
                var key = build.Platforms.Count == 1 ? build.Name : $"{build.Name}.{p.Platform}";
                evidence[$"{key}.sbomReferrer"] = attached.ManifestDigest + (attached.UsedFallbackTag ? " (tag fallback)" : "");
            }
            var reference = $"{host}/{build.Repository}@{build.Digest}";
            context.PushedImages.Add(reference);
            evidence[$"{build.Name}.reference"] = reference;
            evidence[$"{build.Name}.tag"] = $"{host}/{build.Repository}:{TagOf(context)}";
        }

        if (builds.Count == 0)
        {
            foreach (var image in context.Images) context.PushedImages.Add($"{host}/{image.Repository}@{image.Image.ManifestDigest}");
        }

        var input = context.Images.Count == 1 ? context.Images[0].Image.ManifestDigest.ToString() : null;
        return new StageOutcome(input, string.Join(" ", context.PushedImages), evidence);
    }

    private static string TagOf(DeliveryContext context) =>
        context.Annotated?.Name ?? throw new PipelineException("ENG-STAGE-ORDER", "push needs the fetch stage first");
}
