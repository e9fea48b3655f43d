using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Pipeline.Engine.Ledger;

/// <summary>Pass or fail of one stage of one delivery.</summary>
public enum Verdict
{
    Passed,
    Failed,
}

/// <summary>What a stage reports to the ledger before it is sealed into the chain.</summary>
public sealed record StageRecord(
    Guid DeliveryId,
    string Pipeline,
    string Stage,
    Verdict Verdict,
    string? ReasonCode,
    string? Reason,
    string? InputDigest,
    string? OutputDigest,
    IReadOnlyDictionary<string, string> Evidence);

/// <summary>
/// One sealed ledger entry: a stage record plus its place in the chain. <see cref="EntryHash"/> is
/// SHA-256 over the canonical JSON of every other field, including <see cref="PreviousHash"/>, so
/// changing, removing or reordering any entry breaks every hash after it.
/// </summary>
public sealed record LedgerEntry(
    long Sequence,
    StageRecord Record,
    DateTimeOffset RecordedAt,
    string PreviousHash,
    string EntryHash)
{
    /// <summary>Index of the transparency-log leaf that attests this entry (null for unsigned or pre-log entries).</summary>
    public long? LogIndex { get; init; }

    /// <summary>The hash that precedes the first entry.</summary>
    public const string GenesisHash = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>The record's own fields, in the order both the chain hash and the signed record digest use.</summary>
    internal static void WriteRecordFields(System.Text.Json.Utf8JsonWriter w, StageRecord r)
    {
        w.WriteString("deliveryId", r.DeliveryId.ToString("D"));
        w.WriteString("pipeline", r.Pipeline);
        w.WriteString("stage", r.Stage);
        w.WriteString("verdict", r.Verdict == Verdict.Passed ? "passed" : "failed");
        w.WriteString("reasonCode", r.ReasonCode);
        w.WriteString("reason", r.Reason);
        w.WriteString("input", r.InputDigest);
        w.WriteString("output", r.OutputDigest);
        w.WriteStartObject("evidence");
        foreach (var (k, v) in r.Evidence.OrderBy(e => e.Key, StringComparer.Ordinal)) w.WriteString(k, v);
        w.WriteEndObject();
    }

    public static string ComputeHash(long sequence, StageRecord r, DateTimeOffset recordedAt, string previousHash)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", sequence);
            WriteRecordFields(w, r);
            w.WriteString("recordedAt", LedgerBinding.FormatTime(recordedAt));
            w.WriteString("prev", previousHash);
            w.WriteEndObject();
        }

        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(buffer.ToArray()));
    }

    /// <summary>PostgreSQL keeps microseconds; hash exactly what will be stored.</summary>
    public static DateTimeOffset TruncateToMicroseconds(DateTimeOffset t) =>
        new(t.UtcTicks - t.UtcTicks % 10, TimeSpan.Zero);
}

/// <summary>Canonical, ordered JSON for evidence maps stored in the ledger.</summary>
internal static class EvidenceJson
{
    public static string Serialize(IReadOnlyDictionary<string, string> evidence) =>
        JsonSerializer.Serialize(new SortedDictionary<string, string>(evidence.ToDictionary(), StringComparer.Ordinal));

    public static IReadOnlyDictionary<string, string> Deserialize(string json) =>
        JsonSerializer.Deserialize<SortedDictionary<string, string>>(json) ?? new SortedDictionary<string, string>();
}
