using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Engine.Attestations;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Binds a ledger row to the statement that attests it, so that every column a command shows,
/// filters or sorts on can be proven from signed data. Before signing, the statement gets
/// <c>ledgerRecord</c> (SHA-256 over the canonical JSON of the whole stage record and its time; in a
/// SLSA provenance it sits in <c>buildDefinition.internalParameters</c>), and the row's time is the
/// statement's signed <c>finishedOn</c>. <c>audit verify</c> recomputes the digest from the row.
/// </summary>
public static class LedgerBinding
{
    public const string Field = "ledgerRecord";

    /// <summary>SHA-256 over the canonical JSON of every field of the record and its time (not its place in the chain).</summary>
    public static string RecordDigest(StageRecord r, DateTimeOffset recordedAt)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            LedgerEntry.WriteRecordFields(w, r);
            w.WriteString("recordedAt", FormatTime(recordedAt));
            w.WriteEndObject();
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(buffer.ToArray()));
    }

    /// <summary>
    /// The statement to sign for <paramref name="record"/>: a copy of <paramref name="statement"/> carrying
    /// the record digest, and the time the row will be stored with (the statement's own <c>finishedOn</c>,
    /// truncated to microseconds; set to <paramref name="now"/> when the statement has none).
    /// </summary>
    public static (InTotoStatement Statement, DateTimeOffset RecordedAt) Bind(InTotoStatement statement, StageRecord record, DateTimeOffset now)
    {
        var predicate = (JsonObject)statement.Predicate.DeepClone();
        var slsa = statement.PredicateType == PredicateTypes.SlsaProvenance;
        var at = LedgerEntry.TruncateToMicroseconds(SignedTime(statement) ?? now);
        if (!slsa && predicate["finishedOn"] is null) predicate["finishedOn"] = FormatTime(at);
        var target = slsa ? predicate["buildDefinition"]?["internalParameters"] as JsonObject : predicate;
        if (target is null)
        {
            if (predicate["buildDefinition"] is not JsonObject bd) predicate["buildDefinition"] = bd = new JsonObject();
            bd["internalParameters"] = target = new JsonObject();
        }

        if (slsa && SignedTime(statement) is null)
        {
            if (predicate["runDetails"] is not JsonObject rd) predicate["runDetails"] = rd = new JsonObject();
            if (rd["metadata"] is not JsonObject md) rd["metadata"] = md = new JsonObject();
            md["finishedOn"] = FormatTime(at);
        }

        target[Field] = RecordDigest(record, at);
        return (statement with { Predicate = predicate }, at);
    }

    /// <summary>The record digest a statement was signed with, or null (written before rows were bound).</summary>
    public static string? SignedRecordDigest(InTotoStatement s)
    {
        var node = s.PredicateType == PredicateTypes.SlsaProvenance ? s.Predicate["buildDefinition"]?["internalParameters"]?[Field] : s.Predicate[Field];
        return node is JsonValue v && v.TryGetValue<string>(out var d) ? d : null;
    }

    /// <summary>The statement's signed time (<c>finishedOn</c>), or null when it has none or it does not parse.</summary>
    public static DateTimeOffset? SignedTime(InTotoStatement s)
    {
        var node = s.PredicateType == PredicateTypes.SlsaProvenance ? s.Predicate["runDetails"]?["metadata"]?["finishedOn"] : s.Predicate["finishedOn"];
        return node is JsonValue v && v.TryGetValue<string>(out var text)
               && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)
            ? t
            : null;
    }

    public static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
}
