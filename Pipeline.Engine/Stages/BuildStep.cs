using Pipeline.Engine.Attestations;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Stages;

/// <summary>
/// Builds the images <c>delivery.yaml</c> asks for, without a Docker daemon: per platform, the
/// approved base (by digest, from the internal registry) plus one deterministic layer per file
/// mapping (root-owned, modes as declared, mtime = the tag's time), a config with OCI labels for
/// source and revision, and an SPDX SBOM of the added files. Several platforms give one OCI index.
/// Same delivery, same digests. Statement (passed): SLSA Provenance v1, subjects every image (and
/// index) and its new layers; resolved dependencies the bases, the commit, the checksum manifest
/// and the scan verdict.
/// </summary>
public sealed class BuildStep : IIntakeStep<BuildInput, Built>
{
    public string Name => "build";

    public async Task<StepResult<Built>> RunAsync(DeliveryContext context, BuildInput input, StepEvidence found, CancellationToken ct)
    {
        var buildInputs = Inputs(context, input.Verified);
        IReadOnlyList<DeliveryImageBuild> builds;
        if (input.Ahead is { } ahead)
        {
            builds = await ahead.BuildsAsync(input.Verified, ct).ConfigureAwait(false);
        }
        else
        {
            using var client = RegistryClients.Create(context.Settings);
            builds = await DeliveryImageBuilder.BuildAsync(buildInputs, client, ct).ConfigureAwait(false);
        }

        var images = new List<BuiltDeliveryImage>();
        var evidence = StageOutcome.NewEvidence();
        foreach (var build in builds)
        {
            foreach (var p in build.Platforms)
            {
                // Single platform: the manifest goes under the tag. Several: each by digest, the index under the tag.
                var reference = build.Index is null ? input.Tag.Name : p.Image.ManifestDigest.ToString();
                images.Add(new BuiltDeliveryImage(build.Platforms.Count == 1 ? build.Name : $"{build.Name}[{p.Platform}]",
                    build.Repository, reference, p.Image, buildInputs.StoreDir) { BaseRepository = build.BaseRepository });
                var key = build.Platforms.Count == 1 ? build.Name : $"{build.Name}.{p.Platform}";
                evidence[$"{key}.base"] = build.Base;
                evidence[$"{key}.layers"] = string.Join(" ", p.Image.NewLayers.Select(l => l.Descriptor.Digest));
                evidence[$"{key}.image"] = p.Image.ManifestDigest.ToString();
                evidence[$"{key}.sbom"] = p.SbomDescriptor.Digest.ToString();
            }
            if (build.Index is not null) evidence[$"{build.Name}.index"] = build.Digest.ToString();
        }

        var output = builds.Count == 1
            ? builds[0].Digest.ToString()
            : Digest.Compute(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", builds.Select(b => $"{b.Name} {b.Digest}")))).ToString();
        return new StepResult<Built>(new Built(input.Published, images, builds), new StageOutcome(input.Verified.Checksums.ManifestDigest, output, evidence));
    }

    /// <summary>What the build of a verified delivery takes: its files, <c>delivery.yaml</c>, the tag and the pipeline's settings.</summary>
    public static DeliveryBuildInputs Inputs(DeliveryContext context, Verified verified)
    {
        var (tag, definition) = (verified.Tag, context.Definition);
        return new DeliveryBuildInputs(
            context.TreeDir, verified.Delivery, definition.Name, definition.Supplier, definition.Images.RepositoryPrefix,
            tag.Name, tag.CommitId, verified.Fetched.TagTime, PublishStep.InternalRepositoryUrl(context).ToString(),
            Path.Combine(context.Settings.WorkDir, "blobs"));
    }

    public InTotoStatement Attest(DeliveryContext context, BuildInput input, StepResult<Built> result, DateTimeOffset finishedOn)
    {
        var subjects = new List<ResourceDescriptor>();
        // A multi-platform image is tagged, and its attestations attached, as the index: it is a subject too.
        foreach (var build in result.Output.Builds.Where(b => b.IndexBytes is not null))
            subjects.Add(ResourceDescriptor.Of($"{build.Repository}:{context.Tag.Name}", "sha256", StageAttestations.Hex(build.Digest.ToString())));
        foreach (var image in result.Output.Images)
        {
            var byDigest = image.Tag.StartsWith("sha256:", StringComparison.Ordinal);
            subjects.Add(ResourceDescriptor.Of($"{image.Repository}{(byDigest ? "@" : ":")}{image.Tag}", "sha256", StageAttestations.Hex(image.Image.ManifestDigest.ToString())));
            foreach (var layer in image.Image.NewLayers)
                subjects.Add(ResourceDescriptor.Of($"{image.Name}/layer", "sha256", StageAttestations.Hex(layer.Descriptor.Digest.ToString())));
        }

        return StageAttestations.Provenance(context, input.Verified.Signer, subjects, Materials(context, input.Published), result.Outcome, finishedOn);
    }

    public InTotoStatement AttestFailure(DeliveryContext context, BuildInput input, StepFailure failure, DateTimeOffset finishedOn) =>
        StageAttestations.Failed(context, Name, failure, [], Materials(context, input.Published), finishedOn);

    /// <summary>The approved bases by digest, the commit (with the supplier's URL), the checksum manifest and the scan verdict.</summary>
    private static List<ResourceDescriptor> Materials(DeliveryContext context, Published input)
    {
        var materials = new List<ResourceDescriptor>();
        foreach (var spec in input.Verified.Delivery.Images)
        {
            var at = spec.Base.IndexOf('@');
            if (at > 0) materials.Add(ResourceDescriptor.Of(spec.Base[..at], "sha256", StageAttestations.Hex(spec.Base[(at + 1)..]), "oci://" + spec.Base));
        }

        materials.Add(StageAttestations.CommitDescriptor(context, input.Tag) with { Uri = "git+" + context.Definition.Source.Url });
        if (StageAttestations.ManifestDescriptor(context, input.Verified.Checksums) is { } manifest) materials.Add(manifest);
        if (StageAttestations.ScanVerdictDescriptor(input.Scanned.VerdictDigest) is { } verdict) materials.Add(verdict);
        return materials;
    }

    internal static (string Repository, string Digest) SplitReference(string reference)
    {
        var at = reference.IndexOf('@');
        return (reference[..at], reference[(at + 1)..]);
    }
}
