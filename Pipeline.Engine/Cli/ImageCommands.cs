using System.CommandLine;
using System.Globalization;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Runs;
using Pipeline.Engine.Stages;
using Pipeline.Registry.Distribution;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline image build</c>: rebuilds a delivery's images offline from a checked-out delivery
/// (e.g. the tag in VCS B), with the same inputs the build stage used, and prints the digests, so an
/// auditor can compare them with what the registry and the ledger hold. Nothing is pushed; the base
/// is read (by digest) from the given registry. Writes manifests, configs, SBOMs and blobs to --out.
/// </summary>
public static class ImageCommands
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var delivery = new Option<string>("--delivery") { Description = "folder with the delivered files and delivery.yaml", Required = true };
        var output = new Option<string>("--out") { Description = "output folder (blobs, manifests, SBOMs)", Required = true };
        var registry = new Option<string>("--registry") { Description = "registry to read base images from (host:port or URL)", Required = true };
        var credentials = new Option<string?>("--registry-credentials") { Description = "file with user:password for the registry" };
        var ca = new Option<string?>("--registry-ca") { Description = "PEM CA bundle for an https registry" };
        var tag = new Option<string>("--tag") { Description = "the delivery's tag name (image tag)", Required = true };
        var commit = new Option<string>("--commit") { Description = "commit id the tag points to", Required = true };
        var time = new Option<string?>("--time") { Description = "the tag's time (RFC 3339); default $SOURCE_DATE_EPOCH" };
        var source = new Option<string>("--source") { Description = "org.opencontainers.image.source (the VCS B repository URL)", Required = true };
        var prefix = new Option<string>("--repository-prefix") { Description = "images.repositoryPrefix of the pipeline", Required = true };
        var pipeline = new Option<string>("--pipeline") { Description = "pipeline name", Required = true };
        var supplier = new Option<string>("--supplier") { Description = "supplier (org.opencontainers.image.vendor)", Required = true };
        var allowBase = new Option<string[]>("--allow-base") { Description = "allowed base image repository@sha256:... (repeat)", Required = true, AllowMultipleArgumentsPerToken = true };
        var allowRoot = new Option<bool>("--allow-root") { Description = "the pipeline allows images running as root" };

        var build = new Command("build", "rebuild a delivery's images deterministically (no push); prints name, repository@digest and layer digests");
        foreach (var o in new Option[] { delivery, output, registry, credentials, ca, tag, commit, time, source, prefix, pipeline, supplier, allowBase, allowRoot })
            build.Options.Add(o);
        build.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            var when = ParseTime(p.GetValue(time));
            var tree = Path.GetFullPath(p.GetValue(delivery)!);
            var outDir = Path.GetFullPath(p.GetValue(output)!);
            var manifest = DeliveryManifestParser.Load(tree, p.GetValue(allowBase)!, p.GetValue(allowRoot));
            var inputs = new DeliveryBuildInputs(tree, manifest, p.GetValue(pipeline)!, p.GetValue(supplier)!, p.GetValue(prefix)!,
                p.GetValue(tag)!, p.GetValue(commit)!, when, p.GetValue(source)!, Path.Combine(outDir, "blobs"));
            var endpoint = RegistryEndpoint.Parse(p.GetValue(registry)!, p.GetValue(credentials) is { } c ? RegistryCredentials.FromFile(c) : null);
            using var client = new RegistryClient(endpoint, new RegistryClientOptions { CaBundleFile = p.GetValue(ca) });
            var builds = await DeliveryImageBuilder.BuildAsync(inputs, client, ct).ConfigureAwait(false);
            foreach (var b in builds)
            {
                var dir = Path.Combine(outDir, b.Name);
                Directory.CreateDirectory(dir);
                if (b.IndexBytes is not null) await File.WriteAllBytesAsync(Path.Combine(dir, "index.json"), b.IndexBytes, ct).ConfigureAwait(false);
                stdout.WriteLine($"{b.Name} {b.Repository}@{b.Digest}");
                foreach (var pi in b.Platforms)
                {
                    var pdir = Path.Combine(dir, pi.Platform.Replace('/', '-'));
                    Directory.CreateDirectory(pdir);
                    await File.WriteAllBytesAsync(Path.Combine(pdir, "manifest.json"), pi.Image.ManifestBytes, ct).ConfigureAwait(false);
                    await File.WriteAllBytesAsync(Path.Combine(pdir, "config.json"), pi.Image.ConfigBytes, ct).ConfigureAwait(false);
                    await File.WriteAllBytesAsync(Path.Combine(pdir, "sbom.spdx.json"), pi.Sbom, ct).ConfigureAwait(false);
                    stdout.WriteLine($"  {pi.Platform} manifest {pi.Image.ManifestDigest}");
                    foreach (var l in pi.Image.NewLayers) stdout.WriteLine($"  {pi.Platform} layer {l.Descriptor.Digest}");
                }
            }
            return PipelineCli.Ok;
        }));

        var image = new Command("image", "image tools for auditors (rebuild a delivery's images and compare digests)");
        image.Subcommands.Add(build);
        return image;
    }

    private static DateTimeOffset ParseTime(string? text)
    {
        if (text is not null)
        {
            if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return t;
            throw new PipelineException("IMAGE-TIME", $"--time '{text}' is not an RFC 3339 time");
        }
        if (Environment.GetEnvironmentVariable("SOURCE_DATE_EPOCH") is { Length: > 0 } epoch && long.TryParse(epoch, NumberStyles.None, CultureInfo.InvariantCulture, out var s))
            return DateTimeOffset.FromUnixTimeSeconds(s);
        throw new PipelineException("IMAGE-TIME", "give the tag's time with --time or SOURCE_DATE_EPOCH");
    }
}
