using System.Globalization;
using Pipeline.Registry.Layers;

namespace Pipeline.Engine.Stages;

/// <summary>Pushes the built images (missing blobs only, then the manifest) to the internal registry.</summary>
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
            var reference = $"{host}/{image.Repository}@{result.ManifestDigest}";
            context.PushedImages.Add(reference);
            evidence[$"{image.Name}.reference"] = reference;
            evidence[$"{image.Name}.tag"] = $"{host}/{image.Repository}:{image.Tag}";
            evidence[$"{image.Name}.blobs"] = string.Create(CultureInfo.InvariantCulture, $"uploaded {result.BlobsUploaded}, present {result.BlobsSkipped}, mounted {result.BlobsMounted}");
        }

        var input = context.Images.Count == 1 ? context.Images[0].Image.ManifestDigest.ToString() : null;
        return new StageOutcome(input, string.Join(" ", context.PushedImages), evidence);
    }
}
