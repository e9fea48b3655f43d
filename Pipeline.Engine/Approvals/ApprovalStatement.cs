using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Pipeline.Engine.Approvals;

/// <summary>
/// The canonical approval statement: the exact bytes an approver signs with their own key
/// (<c>ssh-keygen -Y sign -n pipeline-freigabe</c> or an OpenPGP detached signature). Canonical
/// JSON: UTF-8, no whitespace, keys in ordinal order, digests sorted, times in UTC with second
/// precision (<c>yyyy-MM-ddTHH:mm:ssZ</c>), absent values written as <c>null</c>:
/// <code>
/// {"approver":"Anna Beispiel","comment":"Abnahme ok","decision":"approve","delivery":"0192…",
///  "digests":["sha256:…"],"enteredBy":null,"fromStage":"Vorprüfung","issuedAt":"2026-12-01T10:00:00Z",
///  "pipeline":"fachverfahren-a","stageResult":"sha256:…","tag":"v1.4.2","toStage":"Abnahme",
///  "type":"https://pipeline.example/freigabe/v1"}
/// </code>
/// The engine rebuilds the statement from what the approver claims and compares bytes: a
/// signature over anything else does not count.
/// </summary>
public sealed record ApprovalStatement(
    Guid DeliveryId,
    string Pipeline,
    string Tag,
    string? FromStage,
    string ToStage,
    string Decision,
    string Approver,
    string? EnteredBy,
    IReadOnlyList<string> Digests,
    string StageResult,
    string? Comment,
    DateTimeOffset IssuedAt)
{
    public const string Type = "https://pipeline.example/freigabe/v1";

    /// <summary>The SSH signature namespace of Freigaben (never valid for git or file signatures, and vice versa).</summary>
    public const string SshNamespace = "pipeline-freigabe";

    public byte[] CanonicalBytes()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("approver", Approver);
            w.WriteString("comment", Comment);
            w.WriteString("decision", Decision);
            w.WriteString("delivery", DeliveryId.ToString("D"));
            w.WriteStartArray("digests");
            foreach (var d in Digests.Distinct().Order(StringComparer.Ordinal)) w.WriteStringValue(d);
            w.WriteEndArray();
            w.WriteString("enteredBy", EnteredBy);
            w.WriteString("fromStage", FromStage);
            w.WriteString("issuedAt", Time(IssuedAt));
            w.WriteString("pipeline", Pipeline);
            w.WriteString("stageResult", StageResult);
            w.WriteString("tag", Tag);
            w.WriteString("toStage", ToStage);
            w.WriteString("type", Type);
            w.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary><c>sha256:…</c> of the canonical bytes.</summary>
    public string Digest => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(CanonicalBytes()));

    /// <summary>Parses statement bytes; they must be exactly canonical (re-serialising gives the same bytes).</summary>
    /// <exception cref="PipelineException">LC-STATEMENT-MISMATCH.</exception>
    public static ApprovalStatement Parse(byte[] bytes)
    {
        const string C = Lifecycle.LifecycleErrors.StatementMismatch;
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var r = doc.RootElement;
            string? S(string k) => r.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            if (S("type") != Type) throw new PipelineException(C, $"the signed statement is not a Freigabe statement (type must be {Type})");
            var digests = r.TryGetProperty("digests", out var ds) && ds.ValueKind == JsonValueKind.Array ? ds.EnumerateArray().Select(x => x.GetString() ?? "").ToList() : [];
            var issued = DateTimeOffset.ParseExact(S("issuedAt") ?? "", "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
            var s = new ApprovalStatement(Guid.Parse(S("delivery") ?? ""), S("pipeline") ?? "", S("tag") ?? "", S("fromStage"), S("toStage") ?? "", S("decision") ?? "",
                S("approver") ?? "", S("enteredBy"), digests, S("stageResult") ?? "", S("comment"), issued);
            if (!s.CanonicalBytes().AsSpan().SequenceEqual(bytes))
                throw new PipelineException(C, "the signed statement is not in canonical form (print it with 'pipeline approval-statement' and sign those bytes unchanged)");
            return s;
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException or InvalidOperationException)
        {
            throw new PipelineException(C, $"the signed statement is not a readable Freigabe statement: {e.Message}");
        }
    }

    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Truncates to whole seconds (the statement's precision).</summary>
    public static DateTimeOffset ToSeconds(DateTimeOffset t) => new(t.UtcTicks - t.UtcTicks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    public string Describe() => Encoding.UTF8.GetString(CanonicalBytes());
}
