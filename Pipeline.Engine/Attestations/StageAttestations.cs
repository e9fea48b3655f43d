using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Stages;
using Pipeline.Engine.Vcs;

namespace Pipeline.Engine.Attestations;

/// <summary>
/// What every stage statement shares: the predicate's delivery, policy and signer, scrubbed evidence,
/// SLSA Provenance v1 for the build, and the descriptors that link the stages by digest: tag object
/// and commit (fetch) → checksum manifest (verify) → scan verdict (scan) → internal tag (publish) →
/// image and layers (build) → pushed reference (push). Which subjects and materials a stage names is
/// the stage's own decision: each intake step builds its statement (<see cref="IIntakeStep{TIn,TOut}.Attest"/>)
/// with these helpers. Stages without their own mapping (e.g. smoke) use <see cref="ForOutcome"/>.
/// </summary>
public static class StageAttestations
{
    /// <summary>The supplier's tag as listed (name and tag object).</summary>
    public static ResourceDescriptor TagDescriptor(DeliveryContext ctx) =>
        ResourceDescriptor.Of($"{ctx.Definition.Source.Url}#refs/tags/{ctx.Tag.Name}", "gitTag", ctx.Tag.ObjectId);

    /// <summary>The commit the annotated tag points at.</summary>
    public static ResourceDescriptor CommitDescriptor(DeliveryContext ctx, AnnotatedTag tag) =>
        ResourceDescriptor.Of(ctx.Tag.Name + "^{commit}", "gitCommit", tag.CommitId);

    /// <summary>The verified checksum manifest.</summary>
    public static ResourceDescriptor? ManifestDescriptor(DeliveryContext ctx, ChecksumReport checksums) =>
        ResourceDescriptor.FromDigest(ctx.Definition.ChecksumManifest, checksums.ManifestDigest);

    /// <summary>The accepted scan verdict, a material of the stages after scan.</summary>
    public static ResourceDescriptor? ScanVerdictDescriptor(string verdictDigest) => ResourceDescriptor.FromDigest("scan-verdict", verdictDigest);

    /// <summary>A passed stage's statement: its predicate type, the common predicate, materials and evidence.</summary>
    public static InTotoStatement Passed(DeliveryContext ctx, string stage, string? signer, IEnumerable<ResourceDescriptor> subjects, IEnumerable<ResourceDescriptor> materials,
        StageOutcome outcome, DateTimeOffset finishedOn) =>
        Statement(ctx, stage, signer, subjects.ToList(), materials.ToList(), outcome.Evidence, null, null, finishedOn);

    /// <summary>
    /// A failed stage's statement: the subjects the stage names anyway, then those it had established
    /// (<see cref="StepFailure.Subjects"/>); the evidence of the checks before the failure, signed
    /// like a passed stage's evidence. Without any subject it attests about the tag it was working on.
    /// </summary>
    public static InTotoStatement Failed(DeliveryContext ctx, string stage, StepFailure failure, IEnumerable<ResourceDescriptor> subjects, IEnumerable<ResourceDescriptor> materials,
        DateTimeOffset finishedOn) =>
        Statement(ctx, stage, failure.Signer, subjects.Concat(failure.Subjects).ToList(), materials.ToList(), failure.Evidence, failure.Code, failure.Reason, finishedOn);

    private static InTotoStatement Statement(DeliveryContext ctx, string stage, string? signer, List<ResourceDescriptor> subjects, List<ResourceDescriptor> materials,
        IReadOnlyDictionary<string, string> evidence, string? failCode, string? failReason, DateTimeOffset finishedOn)
    {
        // A statement needs a subject: a failed stage attests about the tag it was working on.
        if (subjects.Count == 0) subjects.Add(TagDescriptor(ctx));
        var predicate = Common(ctx, stage, signer, failCode, failReason is null ? null : LocalPaths.Scrub(failReason, ctx), finishedOn);
        predicate["materials"] = new JsonArray(materials.Select(m => (JsonNode)m.ToJson()).ToArray());
        predicate["evidence"] = Evidence(ctx, evidence);
        return new InTotoStatement(subjects, PredicateTypes.ForStage(stage), predicate);
    }

    /// <summary>
    /// The generic mapping for a stage without its own: the outcome's input digest is the material, its
    /// output digests (<c>name@digest</c> or bare digests, space-separated) the subjects.
    /// </summary>
    public static InTotoStatement ForOutcome(DeliveryContext ctx, string stage, string? signer, StageOutcome outcome, DateTimeOffset finishedOn)
    {
        var subjects = SubjectsOf(outcome.OutputDigest);
        var materials = new List<ResourceDescriptor>();
        if (ResourceDescriptor.FromDigest(null, outcome.InputDigest) is { } input) materials.Add(input);
        return Statement(ctx, stage, signer, subjects, materials, outcome.Evidence, null, null, finishedOn);
    }

    /// <summary>Output digests (<c>name@digest</c> or bare digests, space-separated) as subjects.</summary>
    private static List<ResourceDescriptor> SubjectsOf(string? digests)
    {
        var subjects = new List<ResourceDescriptor>();
        foreach (var d in (digests ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var at = d.IndexOf('@');
            if (ResourceDescriptor.FromDigest(at > 0 ? d : null, at > 0 ? d[(at + 1)..] : d) is { } r) subjects.Add(r);
        }

        return subjects;
    }

    /// <summary>
    /// A statement from a bare ledger record (callers that append without a delivery context):
    /// the output digests are the subjects, the input digest the material.
    /// </summary>
    public static InTotoStatement FromRecord(Ledger.StageRecord r, DateTimeOffset finishedOn)
    {
        var subjects = SubjectsOf(r.OutputDigest);
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

    private static JsonObject Evidence(DeliveryContext ctx, IReadOnlyDictionary<string, string> evidence)
    {
        var o = new JsonObject();
        foreach (var (k, v) in evidence.OrderBy(e => e.Key, StringComparer.Ordinal)) o[k] = LocalPaths.Scrub(v, ctx);
        return o;
    }

    private static JsonObject Common(DeliveryContext ctx, string stage, string? signer, string? failCode, string? failReason, DateTimeOffset finishedOn)
    {
        var passed = failCode is null;
        var o = new JsonObject
        {
            ["stage"] = stage,
            ["verdict"] = passed ? "passed" : "failed",
            ["delivery"] = Delivery(ctx),
            ["policy"] = Policy(ctx),
            ["signer"] = signer,
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

    /// <summary>A passed build's statement: SLSA Provenance v1 over the built images, the materials as resolved dependencies.</summary>
    public static InTotoStatement Provenance(DeliveryContext ctx, string? signer, IEnumerable<ResourceDescriptor> subjects, IEnumerable<ResourceDescriptor> materials,
        StageOutcome outcome, DateTimeOffset finishedOn)
    {
        var list = subjects.ToList();
        if (list.Count == 0) list.Add(TagDescriptor(ctx));
        return new InTotoStatement(list, PredicateTypes.SlsaProvenance, ProvenancePredicate(ctx, signer, materials.ToList(), outcome, finishedOn));
    }

    private static JsonObject ProvenancePredicate(DeliveryContext ctx, string? signer, List<ResourceDescriptor> materials, StageOutcome outcome, DateTimeOffset finishedOn)
    {
        var evidence = Evidence(ctx, outcome.Evidence);
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
                    ["signer"] = signer,
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

    /// <summary>The hex of a <c>sha256:</c> digest.</summary>
    public static string Hex(string digest) => digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest[7..] : digest;

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
