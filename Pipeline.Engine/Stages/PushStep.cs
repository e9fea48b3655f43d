using System.Globalization;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Sbom;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Distribution;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Pushes the built images (missing blobs only, then the manifests; with several platforms the
/// platform manifests by digest and the index under the tag) and attaches each platform image's
/// SPDX SBOM as an OCI 1.1 referrer (tag-schema fallback where the registry has no referrers API).
/// Statement: subjects the pushed references (those pushed before a failure); materials the built images.
/// </summary>
public sealed class PushStep : IIntakeStep<PushInput, Pushed>
{
    public string Name => "push";

    public async Task<StepResult<Pushed>> RunAsync(DeliveryContext context, PushInput input, StepEvidence found, CancellationToken ct)
    {
        if (input.Images.Count == 0) throw new PipelineException("ENG-STAGE-ORDER", "push needs the build stage first");
        using var client = RegistryClients.Create(context.Settings);
        var host = context.Settings.Registry.Url.Authority;
        var tag = input.Tag.Name;
        var pushed = new List<string>();
        var evidence = StageOutcome.NewEvidence();
        foreach (var image in input.Images)
        {
            // The blobs (uploaded beside the publish when the runner started that), then the manifest under the tag.
            var blobs = input.Ahead is { } ahead
                ? await ahead.BlobsAsync(image, ct).ConfigureAwait(false)
                : await client.PushImageBlobsAsync(image.Repository, image.Image, new BlobStore(image.BlobStoreDir), image.BaseRepository, ct).ConfigureAwait(false);
            await client.PushImageManifestAsync(image.Repository, image.Tag, image.Image, ct).ConfigureAwait(false);
            evidence[$"{image.Name}.blobs"] = string.Create(CultureInfo.InvariantCulture, $"uploaded {blobs.Uploaded}, present {blobs.Skipped}, mounted {blobs.Mounted}");
        }

        var created = input.Verified.Fetched.TagTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        foreach (var build in input.Builds)
        {
            if (build.Index is not null)
                await client.PushIndexAsync(build.Repository, tag, build.Index, ct).ConfigureAwait(false);
            foreach (var p in build.Platforms)
            {
                var attached = await client.AttachArtifactAsync(build.Repository, p.Image.ManifestDescriptor, SpdxSbom.MediaType,
                    [(p.SbomDescriptor, p.Sbom)], new Dictionary<string, string> { ["org.opencontainers.image.created"] = created }, ct).ConfigureAwait(false);
                var key = build.Platforms.Count == 1 ? build.Name : $"{build.Name}.{p.Platform}";
                evidence[$"{key}.sbomReferrer"] = attached.ManifestDigest + (attached.UsedFallbackTag ? " (tag fallback)" : "");
            }
            var reference = $"{host}/{build.Repository}@{build.Digest}";
            pushed.Add(reference);
            // Pushed and referenced: a later failure still attests about it.
            if (Subject(reference) is { } subject) found.Established(subject);
            evidence[$"{build.Name}.reference"] = reference;
            evidence[$"{build.Name}.tag"] = $"{host}/{build.Repository}:{tag}";
        }

        if (input.Builds.Count == 0)
        {
            foreach (var image in input.Images) pushed.Add($"{host}/{image.Repository}@{image.Image.ManifestDigest}");
        }

        var inputDigest = input.Images.Count == 1 ? input.Images[0].Image.ManifestDigest.ToString() : null;
        return new StepResult<Pushed>(new Pushed(input.Built, pushed), new StageOutcome(inputDigest, string.Join(" ", pushed), evidence));
    }

    public InTotoStatement Attest(DeliveryContext context, PushInput input, StepResult<Pushed> result, DateTimeOffset finishedOn) =>
        StageAttestations.Passed(context, Name, input.Verified.Signer, result.Output.References.Select(Subject).OfType<ResourceDescriptor>(), Materials(input), result.Outcome, finishedOn);

    public InTotoStatement AttestFailure(DeliveryContext context, PushInput input, StepFailure failure, DateTimeOffset finishedOn) =>
        StageAttestations.Failed(context, Name, failure, [], Materials(input), finishedOn);

    /// <summary>A pushed <c>registry/repository@sha256:…</c> reference as a subject.</summary>
    private static ResourceDescriptor? Subject(string reference)
    {
        var at = reference.IndexOf('@');
        return at > 0 ? ResourceDescriptor.Of(reference, "sha256", StageAttestations.Hex(reference[(at + 1)..])) : null;
    }

    private static IEnumerable<ResourceDescriptor> Materials(PushInput input) =>
        input.Images.Select(image => ResourceDescriptor.Of($"{image.Repository}:{image.Tag}", "sha256", StageAttestations.Hex(image.Image.ManifestDigest.ToString())));
}
