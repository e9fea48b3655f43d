using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Pipeline.Engine.Metering;

/// <summary>
/// A <see cref="MeteringReport"/> as CSV (RFC 4180: comma, CRLF, fields with a comma, quote or line break quoted,
/// quotes doubled; UTF-8 without BOM; invariant culture) or JSON (schema <see cref="JsonSchema"/>), and the atomic
/// write to a file.
/// </summary>
public static class MeteringFormats
{
    public const string JsonSchema = "pipeline-metering-report/v1";

    /// <summary>The CSV header: stable column names, one row per tenant and application.</summary>
    public static readonly IReadOnlyList<string> Columns =
    [
        "month", "tenant", "pipeline",
        "deliveries_accepted", "deliveries_rejected", "deliveries_pending", "deliveries_withdrawn",
        "files_scanned", "bytes_scanned",
        "promotions", "promotions_by_stage",
        "storage_bytes", "storage_bytes_by_stage", "storage_images_without_sizes",
        "final_stage", "reached_final", "to_final_median_seconds", "to_final_max_seconds",
    ];

    public static string ToCsv(MeteringReport report)
    {
        var b = new StringBuilder();
        Line(b, Columns);
        foreach (var r in report.Rows)
        {
            Line(b,
            [
                report.Period.ToString(), r.Tenant, r.Pipeline,
                N(r.DeliveriesAccepted), N(r.DeliveriesRejected), N(r.DeliveriesPending), N(r.DeliveriesWithdrawn),
                N(r.FilesScanned), N(r.BytesScanned),
                N(r.Promotions), ByStage(r.PromotionsByStage),
                N(r.StorageBytes), ByStage(r.StorageBytesByStage), N(r.StorageImagesWithoutSizes),
                r.FinalStage, N(r.ReachedFinal), Seconds(r.ToFinalMedianSeconds), Seconds(r.ToFinalMaxSeconds),
            ]);
        }

        return b.ToString();
    }

    public static string ToJson(MeteringReport report)
    {
        var rows = new JsonArray();
        foreach (var r in report.Rows)
        {
            rows.Add(new JsonObject
            {
                ["tenant"] = r.Tenant,
                ["pipeline"] = r.Pipeline,
                ["deliveries"] = new JsonObject
                {
                    ["accepted"] = r.DeliveriesAccepted, ["rejected"] = r.DeliveriesRejected,
                    ["pending"] = r.DeliveriesPending, ["withdrawn"] = r.DeliveriesWithdrawn,
                },
                ["scan"] = new JsonObject { ["files"] = r.FilesScanned, ["bytes"] = r.BytesScanned },
                ["promotions"] = new JsonObject { ["total"] = r.Promotions, ["byStage"] = Object(r.PromotionsByStage) },
                ["storage"] = new JsonObject
                {
                    ["bytes"] = r.StorageBytes, ["bytesByStage"] = Object(r.StorageBytesByStage), ["imagesWithoutSizes"] = r.StorageImagesWithoutSizes,
                },
                ["toFinalStage"] = new JsonObject
                {
                    ["stage"] = r.FinalStage, ["deliveries"] = r.ReachedFinal,
                    ["medianSeconds"] = r.ToFinalMedianSeconds, ["maxSeconds"] = r.ToFinalMaxSeconds,
                },
            });
        }

        var root = new JsonObject
        {
            ["schema"] = JsonSchema,
            ["period"] = new JsonObject
            {
                ["month"] = report.Period.ToString(),
                ["start"] = Time(report.Period.Start),
                ["end"] = Time(report.Period.End),
                ["complete"] = report.Complete,
            },
            ["tenant"] = report.Tenant,
            ["generatedAt"] = Time(report.GeneratedAt),
            ["rows"] = rows,
        };
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>
    /// Writes <paramref name="text"/> to <paramref name="path"/> atomically: a temporary file in the same folder,
    /// flushed to disk, then renamed over the target. A failure leaves the target as it was and no temporary file.
    /// </summary>
    /// <exception cref="PipelineException">REPORT-WRITE-FAILED.</exception>
    public static async Task WriteAtomicallyAsync(string path, string text, CancellationToken ct)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(new UTF8Encoding(false).GetBytes(text), ct).ConfigureAwait(false);
                await stream.FlushAsync(ct).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            try
            {
                File.Delete(temp);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // nothing more to do: the target was not touched
            }

            if (e is OperationCanceledException) throw;
            throw new PipelineException(MeteringErrors.WriteFailed, $"cannot write the report to '{path}': {e.Message}; nothing was written", e);
        }
    }

    private static void Line(StringBuilder b, IReadOnlyList<string> fields)
    {
        for (var i = 0; i < fields.Count; i++)
        {
            if (i > 0) b.Append(',');
            b.Append(Quote(fields[i]));
        }

        b.Append("\r\n");
    }

    /// <summary>RFC 4180: a field with a comma, a double quote, CR or LF is enclosed in quotes and its quotes doubled.</summary>
    public static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") < 0 ? field : "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Seconds(double? s) => s?.ToString("0.###", CultureInfo.InvariantCulture) ?? "";

    /// <summary><c>Stage=value</c> pairs separated by <c>;</c>, stages in ordinal order; <c>%</c>, <c>;</c> and <c>=</c> in a stage name are written <c>%25</c>, <c>%3B</c>, <c>%3D</c>.</summary>
    private static string ByStage(IReadOnlyDictionary<string, long> d) =>
        string.Join(';', d.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{EscapeStage(kv.Key)}={N(kv.Value)}"));

    public static string EscapeStage(string stage) =>
        stage.Replace("%", "%25", StringComparison.Ordinal).Replace(";", "%3B", StringComparison.Ordinal).Replace("=", "%3D", StringComparison.Ordinal);

    private static JsonObject Object(IReadOnlyDictionary<string, long> d)
    {
        var o = new JsonObject();
        foreach (var (k, v) in d.OrderBy(kv => kv.Key, StringComparer.Ordinal)) o[k] = v;
        return o;
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
