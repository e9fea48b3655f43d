using System.Globalization;
using Pipeline.Engine.Configuration;
using Pipeline.Registry;
using Pipeline.Registry.Copy;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;
using Serilog;

namespace Pipeline.Engine.Lifecycle;

/// <summary>What a promotion did: the images in the target stage and the evidence for its statement.</summary>
public sealed record PromotionOutcome(IReadOnlyList<DeliveryImage> Images, IReadOnlyDictionary<string, string> Evidence);

/// <summary>
/// Copies a delivery's images by digest, with their referrers (SBOM, attestations), from where
/// they are (the intake push, or the previous stage's registry and repository) into a stage's
/// registry and repository, checks that the target serves exactly that digest, and only then
/// moves the stage tag (and the version tag). Idempotent: a retry after a failure skips what is
/// there and finishes; nothing is tagged before every image is complete.
/// </summary>
public sealed partial class PromotionStep(EngineSettings settings, ILogger log)
{
    /// <summary>Where the engine's own registry is reached (the intake and stages without their own registry).</summary>
    public string EngineRegistryHost => settings.Registry.Url.Authority;

    /// <exception cref="LifecycleException">LC-PROMOTE-REGISTRY (transient: an outage of a registry), LC-PROMOTE-UNVERIFIED.</exception>
    public async Task<PromotionOutcome> PromoteAsync(DeliveryLifecycle delivery, StageDefinition? from, StageDefinition to, CancellationToken ct)
    {
        using var source = Client(from?.Registry);
        using var target = Client(to.Registry);
        var targetHost = to.Registry?.Url.Authority ?? EngineRegistryHost;
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal);
        var images = new List<DeliveryImage>();
        try
        {
            foreach (var image in delivery.Images)
            {
                var intakeRepo = from is null ? image.Repository : StripPrefix(image.Repository, from.RepositoryPrefix);
                var repo = to.RepositoryFor(intakeRepo);
                var digest = Digest.Parse(image.Digest);
                var result = await ImageCopier.CopyAsync(source, image.Repository, digest, target, repo, new ImageCopyOptions(), ct).ConfigureAwait(false);
                // Verified: the target serves exactly this digest's bytes.
                var served = await target.GetManifestAsync(repo, image.Digest, ct).ConfigureAwait(false);
                if (served.Digest != digest || Digest.Compute(served.Bytes) != digest)
                    throw new LifecycleException(LifecycleErrors.CopyUnverified, $"{targetHost}/{repo} serves {served.Digest} for {digest} after the copy; the stage tag was not moved");
                images.Add(new DeliveryImage(targetHost, repo, image.Digest));
                evidence[$"{repo}.copy"] = string.Create(CultureInfo.InvariantCulture,
                    $"{result.Manifests} manifests, blobs mounted {result.BlobsMounted}, uploaded {result.BlobsUploaded} ({result.BytesUploaded} bytes), present {result.BlobsSkipped}, referrers {result.Referrers.Count}");
                evidence[$"{repo}.source"] = image.Reference;
                foreach (var (key, value) in Metering.StorageEvidence.For(repo, result.Stored)) evidence[key] = value;
            }

            // Tags move only when every image is complete in the target.
            foreach (var image in images)
            {
                await ImageCopier.TagAsync(target, image.Repository, Digest.Parse(image.Digest), to.Tag, ct).ConfigureAwait(false);
                if (References.IsTag(delivery.Tag))
                    await ImageCopier.TagAsync(target, image.Repository, Digest.Parse(image.Digest), delivery.Tag, ct).ConfigureAwait(false);
                evidence[$"{image.Repository}.tag"] = $"{image.Registry}/{image.Repository}:{to.Tag}";
            }
        }
        catch (RegistryException e)
        {
            log.Warning("Promotion of {DeliveryId} into {Stage} failed: {Code} {Error}; it resumes on the next pass", delivery.DeliveryId, to.Name, e.Code, e.Message);
            throw new LifecycleException(LifecycleErrors.RegistryFailed,
                $"the copy into stage {to.Name} ({targetHost}) failed: {e.Code} {e.Message}; nothing was tagged, the promotion stays approved and resumes on the next pass or with 'pipeline promote {delivery.DeliveryId} --resume'",
                isTransient: true, inner: e);
        }
        catch (HttpRequestException e)
        {
            throw new LifecycleException(LifecycleErrors.RegistryFailed,
                $"the registry of stage {to.Name} ({targetHost}) or its source is unreachable: {e.Message}; nothing was tagged, the promotion resumes on the next pass",
                isTransient: true, inner: e);
        }

        log.Information("Promoted {DeliveryId} into {Stage}: {Images}", delivery.DeliveryId, to.Name, images.Select(i => i.Reference));
        return new PromotionOutcome(images, evidence);
    }

    internal static string StripPrefix(string repository, string prefix) =>
        repository.StartsWith(prefix + "/", StringComparison.Ordinal) ? repository[(prefix.Length + 1)..] : repository;

    private RegistryClient Client(StageRegistry? r) => r is null
        ? new RegistryClient(new RegistryEndpoint(settings.Registry.Url, settings.Registry.CredentialsFile is { } f ? RegistryCredentials.FromFile(f) : null),
            new RegistryClientOptions { CaBundleFile = settings.Registry.CaBundleFile, MaxAttempts = settings.Registry.MaxAttempts })
        : new RegistryClient(new RegistryEndpoint(r.Url, r.CredentialsFile is { } c ? RegistryCredentials.FromFile(c) : null),
            new RegistryClientOptions { CaBundleFile = r.CaFile, MaxAttempts = settings.Registry.MaxAttempts });
}
