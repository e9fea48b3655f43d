using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// The signed in-toto statement of one lifecycle step (promotion, Freigabe, refusal, Rücknahme,
/// supersession). Subjects: the exact image digests (named by their reference in the stage) and a
/// <c>lifecycle-link</c> digest identifying this step; materials: the image digests (subjects of
/// the push) and the previous step's link, so <c>audit trace</c> walks supplier signature → checks →
/// build → push → every promotion → every Freigabe. The predicate has the same shape as the intake
/// stages' (stage, verdict, delivery, signer, finishedOn, materials, evidence), so every audit tool
/// reads it; a Freigabe adds <c>freigabe</c>: the approver's canonical statement and their own
/// signature, verifiable offline against their key (<see cref="FreigabeEvidence"/>).
/// </summary>
public static class LifecycleAttestations
{
    public const string PromotionType = PredicateTypes.Base + "promotion/v1";
    public const string FreigabeType = PredicateTypes.Base + "freigabe/v1";
    public const string LifecycleType = PredicateTypes.Base + "lifecycle/v1";

    /// <summary>Whether a predicate type is one of the lifecycle's (promotion, Freigabe, request/withdrawal/supersession).</summary>
    public static bool IsLifecycle(string predicateType) => predicateType is PromotionType or FreigabeType or LifecycleType or LifecycleService.DeploymentType or LifecycleService.VerificationType;

    /// <summary>A step: its ledger record, its statement, and its link digest (the next step's material; for a promotion also the new stage result).</summary>
    public sealed record Step(StageRecord Record, InTotoStatement Statement, string Link);

    /// <param name="step">The ledger's stage name, e.g. <c>promotion:Abnahme</c>, <c>freigabe:Abnahme</c>, <c>withdrawal</c>.</param>
    /// <param name="previousLink">The delivery's last link (empty before the first lifecycle step).</param>
    /// <param name="freigabe">For approvals and refusals: the canonical statement, the signature and key (or null when unsigned).</param>
    public static Step Build(string step, string predicateType, bool passed, DeliveryLifecycle delivery, IReadOnlyList<DeliveryImage> images, string previousLink,
        string actor, string? reasonCode, string? reason, IReadOnlyDictionary<string, string> evidence, (byte[] Statement, string? Signature, string? Key, string? PublicKey)? freigabe, DateTimeOffset at)
    {
        var materials = new JsonArray();
        foreach (var d in images.Select(i => i.Digest).Distinct().Order(StringComparer.Ordinal))
            materials.Add(ResourceDescriptor.FromDigest("image", d)!.ToJson());
        if (previousLink.Length > 0) materials.Add(ResourceDescriptor.FromDigest("lifecycle-link", previousLink)!.ToJson());

        var ev = new JsonObject();
        foreach (var (k, v) in evidence.OrderBy(e => e.Key, StringComparer.Ordinal)) ev[k] = v;
        var predicate = new JsonObject
        {
            ["stage"] = step,
            ["verdict"] = passed ? "passed" : "failed",
            ["delivery"] = new JsonObject { ["id"] = delivery.DeliveryId.ToString("D"), ["pipeline"] = delivery.Pipeline, ["tag"] = delivery.Tag },
            ["signer"] = actor,
            ["finishedOn"] = at.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture),
            ["lifecycle"] = new JsonObject
            {
                ["fromStage"] = delivery.Stage,
                ["stageResult"] = delivery.Result.Digest,
                ["state"] = LifecycleStore.StateText(delivery.State),
            },
            ["materials"] = materials,
            ["evidence"] = ev,
        };
        if (!passed)
        {
            predicate["reasonCode"] = reasonCode;
            predicate["reason"] = reason;
        }

        if (freigabe is { } f)
        {
            predicate["freigabe"] = new JsonObject
            {
                ["statement"] = Convert.ToBase64String(f.Statement),
                ["statementDigest"] = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f.Statement)),
                ["signature"] = f.Signature,
                ["key"] = f.Key,
                ["publicKey"] = f.PublicKey,
            };
        }

        var link = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(predicate)));
        var subjects = new List<ResourceDescriptor>();
        foreach (var i in images) subjects.Add(ResourceDescriptor.FromDigest(i.Reference, i.Digest)!);
        subjects.Add(ResourceDescriptor.FromDigest("lifecycle-link", link)!);
        if (freigabe is { } g) subjects.Add(ResourceDescriptor.FromDigest("freigabe-statement", "sha256:" + Convert.ToHexStringLower(SHA256.HashData(g.Statement)))!);

        var record = new StageRecord(delivery.DeliveryId, delivery.Pipeline, step, passed ? Verdict.Passed : Verdict.Failed, reasonCode, reason,
            previousLink.Length > 0 ? previousLink : null, link, new Dictionary<string, string>(evidence, StringComparer.Ordinal) { ["actor"] = actor });
        return new Step(record, new InTotoStatement(subjects, predicateType, predicate), link);
    }
}
