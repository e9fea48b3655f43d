using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Pipeline.Engine.Stages;

namespace Pipeline.Engine.Attestations;

/// <summary>
/// Builds the in-toto statement of one stage of one delivery, pass or fail. Subjects and materials
/// link the stages by digest: tag object and commit (fetch) → checksum manifest (verify) → scan
/// verdict (scan) → internal tag (publish) → image and layers (build, SLSA Provenance v1) → pushed
/// reference (push). Earlier statements of the delivery supply the scan verdict for later stages. Stages not named here (e.g. smoke, promotion) get the generic mapping: the
/// outcome's input digest is the material, its output digests the subjects.
/// </summary>
public static class StageAttestations
{
    /// <param name="failureEvidence">For a failed stage (no <paramref name="outcome"/>): what its checks found before one failed
    /// (failed check, signer, key, manifest digest…), signed like a passed stage's evidence.</param>
    public static InTotoStatement Build(DeliveryContext ctx, string stage, StageOutcome? outcome, string? failCode, string? failReason, DateTimeOffset finishedOn, IReadOnlyList<InTotoStatement> previous,
        IReadOnlyDictionary<string, string>? failureEvidence = null)
    {
        var subjects = new List<ResourceDescriptor>();
        var materials = new List<ResourceDescriptor>();
        var tagDescriptor = ResourceDescriptor.Of($"{ctx.Definition.Source.Url}#refs/tags/{ctx.Tag.Name}", "gitTag", ctx.Tag.ObjectId);
        var commit = ctx.Annotated is { } a ? ResourceDescriptor.Of(ctx.Tag.Name + "^{commit}", "gitCommit", a.CommitId) : null;
        var manifest = ctx.Checksums is { } c ? ResourceDescriptor.FromDigest(ctx.Definition.ChecksumManifest, c.ManifestDigest) : null;
        var passed = failCode is null && outcome is not null;

        switch (stage)
        {
            case "fetch":
                subjects.Add(tagDescriptor);
                if (commit is not null) subjects.Add(commit);
                break;
            case "verify":
                if (manifest is not null) subjects.Add(manifest);
                materials.Add(tagDescriptor);
                if (commit is not null) materials.Add(commit);
                break;
            case "scan":
                if (passed && ResourceDescriptor.FromDigest("scan-verdict", outcome!.OutputDigest) is { } verdict) subjects.Add(verdict);
                if (manifest is not null) materials.Add(manifest);
                break;
            case "publish":
                if (passed && outcome!.Evidence.TryGetValue("repository", out var repo))
                    subjects.Add(ResourceDescriptor.Of($"{repo}#refs/tags/{ctx.Tag.Name}", "gitTag", ctx.Tag.ObjectId));
                materials.Add(tagDescriptor);
                AddScanVerdict(previous, materials);
                break;
            case "build":
                // A multi-platform image is tagged, and its attestations attached, as the index: it is a subject too.
                foreach (var build in ctx.Builds.Where(b => b.IndexBytes is not null))
                    subjects.Add(ResourceDescriptor.Of($"{build.Repository}:{ctx.Tag.Name}", "sha256", Hex(build.Digest.ToString())));
                foreach (var image in ctx.Images)
                {
                    var byDigest = image.Tag.StartsWith("sha256:", StringComparison.Ordinal);
                    subjects.Add(ResourceDescriptor.Of($"{image.Repository}{(byDigest ? "@" : ":")}{image.Tag}", "sha256", Hex(image.Image.ManifestDigest.ToString())));
                    foreach (var layer in image.Image.NewLayers)
                        subjects.Add(ResourceDescriptor.Of($"{image.Name}/layer", "sha256", Hex(layer.Descriptor.Digest.ToString())));
                }

                if (ctx.Delivery is { } delivery)
                {
                    foreach (var spec in delivery.Images)
                    {
                        var at = spec.Base.IndexOf('@');
                        if (at > 0) materials.Add(ResourceDescriptor.Of(spec.Base[..at], "sha256", Hex(spec.Base[(at + 1)..]), "oci://" + spec.Base));
                    }
                }

                if (commit is not null) materials.Add(commit with { Uri = "git+" + ctx.Definition.Source.Url });
                if (manifest is not null) materials.Add(manifest);
                AddScanVerdict(previous, materials);
                break;
            case "push":
                foreach (var reference in ctx.PushedImages)
                {
                    var at = reference.IndexOf('@');
                    if (at > 0) subjects.Add(ResourceDescriptor.Of(reference, "sha256", Hex(reference[(at + 1)..])));
                }

                foreach (var image in ctx.Images)
                    materials.Add(ResourceDescriptor.Of($"{image.Repository}:{image.Tag}", "sha256", Hex(image.Image.ManifestDigest.ToString())));
                break;
            default:
                if (outcome is not null)
                {
                    foreach (var d in (outcome.OutputDigest ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        var at = d.IndexOf('@');
                        if (ResourceDescriptor.FromDigest(at > 0 ? d : null, at > 0 ? d[(at + 1)..] : d) is { } r) subjects.Add(r);
                    }

                    if (ResourceDescriptor.FromDigest(null, outcome.InputDigest) is { } input) materials.Add(input);
                }

                break;
        }

        // A statement needs a subject: a failed stage attests about the tag it was working on.
        if (subjects.Count == 0) subjects.Add(tagDescriptor);

        if (stage == "build" && passed) return new InTotoStatement(subjects, PredicateTypes.SlsaProvenance, Provenance(ctx, materials, outcome!, finishedOn));

        var predicate = Common(ctx, stage, passed, failCode, failReason is null ? null : LocalPaths.Scrub(failReason, ctx), finishedOn);
        predicate["materials"] = new JsonArray(materials.Select(m => (JsonNode)m.ToJson()).ToArray());
        var evidence = new JsonObject();
        foreach (var (k, v) in (outcome?.Evidence ?? failureEvidence ?? new Dictionary<string, string>()).OrderBy(e => e.Key, StringComparer.Ordinal))
            evidence[k] = LocalPaths.Scrub(v, ctx);

        predicate["evidence"] = evidence;
        return new InTotoStatement(subjects, PredicateTypes.ForStage(stage), predicate);
    }

    /// <summary>The scan verdict digest of this delivery's passed scan statement, as a material of later stages.</summary>
    /// <summary>
    /// A statement from a bare ledger record (callers that append without a delivery context):
    /// the output digests are the subjects, the input digest the material.
    /// </summary>
    public static InTotoStatement FromRecord(Ledger.StageRecord r, DateTimeOffset finishedOn)
    {
        var subjects = new List<ResourceDescriptor>();
        foreach (var d in (r.OutputDigest ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var at = d.IndexOf('@');
            if (ResourceDescriptor.FromDigest(at > 0 ? d : null, at > 0 ? d[(at + 1)..] : d) is { } x) subjects.Add(x);
        }

        if (subjects.Count == 0) subjects.Add(ResourceDescriptor.Of("delivery", "uuid", r.DeliveryId.ToString("D")));
        var materials = new JsonArray();
        if (ResourceDescriptor.FromDigest(null, r.InputDigest) is { } input) materials.Add(input.ToJson());
        var passed = r.Verdict == Ledger.Verdict.Passed;
        var predicate = new JsonObject
        {
            ["stage"] = r.Stage,
            ["verdict"] = passed ? "passed" : "failed",
            ["delivery"] = new JsonObject { ["id"] = r.DeliveryId.ToString("D"), ["pipeline"] = r.Pipeline },
            ["finishedOn"] = Time(finishedOn),
            ["materials"] = materials,
        };
        if (!passed)
        {
            predicate["reasonCode"] = r.ReasonCode;
            predicate["reason"] = r.Reason;
        }

        var evidence = new JsonObject();
        foreach (var (k, v) in r.Evidence.OrderBy(e => e.Key, StringComparer.Ordinal)) evidence[k] = v;
        predicate["evidence"] = evidence;
        return new InTotoStatement(subjects, PredicateTypes.ForStage(r.Stage), predicate);
    }

    private static void AddScanVerdict(IReadOnlyList<InTotoStatement> previous, List<ResourceDescriptor> materials)
    {
        var scan = previous.LastOrDefault(p => p.PredicateType == PredicateTypes.ForStage("scan") && p.Predicate["verdict"]?.GetValue<string>() == "passed");
        if (scan is not null) materials.AddRange(scan.Subjects.Where(s => s.Name == "scan-verdict"));
    }

    private static JsonObject Common(DeliveryContext ctx, string stage, bool passed, string? failCode, string? failReason, DateTimeOffset finishedOn)
    {
        var o = new JsonObject
        {
            ["stage"] = stage,
            ["verdict"] = passed ? "passed" : "failed",
            ["delivery"] = Delivery(ctx),
            ["policy"] = Policy(ctx),
            ["signer"] = ctx.Signer,
            ["finishedOn"] = Time(finishedOn),
        };
        if (!passed)
        {
            o["reasonCode"] = failCode;
            o["reason"] = failReason;
        }

        return o;
    }

    private static JsonObject Delivery(DeliveryContext ctx) => new()
    {
        ["id"] = ctx.DeliveryId.ToString("D"),
        ["pipeline"] = ctx.Definition.Name,
        ["supplier"] = ctx.Definition.Supplier,
        ["repository"] = ctx.Definition.Source.Url.ToString(),
        ["tag"] = ctx.Tag.Name,
        ["tagObject"] = ctx.Tag.ObjectId,
    };

    /// <summary>The policy in force: the pipeline definition's name and SHA-256 (its "version").</summary>
    private static JsonObject Policy(DeliveryContext ctx)
    {
        string? digest = null;
        try
        {
            digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(ctx.Definition.SourceFile)));
        }
        catch (IOException)
        {
            // Recorded as null: the definition file moved while the engine ran.
        }

        return new JsonObject { ["pipeline"] = ctx.Definition.Name, ["definitionFile"] = Path.GetFileName(ctx.Definition.SourceFile), ["definitionDigest"] = digest };
    }

    private static JsonObject Provenance(DeliveryContext ctx, List<ResourceDescriptor> materials, StageOutcome outcome, DateTimeOffset finishedOn)
    {
        var evidence = new JsonObject();
        foreach (var (k, v) in outcome.Evidence.OrderBy(e => e.Key, StringComparer.Ordinal)) evidence[k] = LocalPaths.Scrub(v, ctx);
        return new JsonObject
        {
            ["buildDefinition"] = new JsonObject
            {
                ["buildType"] = PredicateTypes.BuildType,
                ["externalParameters"] = new JsonObject
                {
                    ["pipeline"] = ctx.Definition.Name,
                    ["tag"] = ctx.Tag.Name,
                    ["repository"] = ctx.Definition.Source.Url.ToString(),
                },
                ["internalParameters"] = new JsonObject
                {
                    ["delivery"] = Delivery(ctx),
                    ["policy"] = Policy(ctx),
                    ["signer"] = ctx.Signer,
                    ["evidence"] = evidence,
                },
                ["resolvedDependencies"] = new JsonArray(materials.Select(m => (JsonNode)m.ToJson()).ToArray()),
            },
            ["runDetails"] = new JsonObject
            {
                ["builder"] = new JsonObject
                {
                    ["id"] = PredicateTypes.BuilderId,
                    ["version"] = new JsonObject { ["pipeline-engine"] = typeof(StageAttestations).Assembly.GetName().Version?.ToString() },
                },
                ["metadata"] = new JsonObject
                {
                    ["invocationId"] = ctx.DeliveryId.ToString("D"),
                    ["finishedOn"] = Time(finishedOn),
                },
            },
        };
    }

    private static string Hex(string digest) => digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest;

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
