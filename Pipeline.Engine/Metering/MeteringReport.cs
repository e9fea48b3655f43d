namespace Pipeline.Engine.Metering;

/// <summary>
/// What one application (pipeline) of one tenant cost in one month. Counts are events inside the month; storage is
/// the state at the month's end (or now, for the current month).
/// </summary>
/// <param name="Tenant">The tenant's id; empty when the pipeline belongs to no tenant.</param>
/// <param name="DeliveriesAccepted">Deliveries accepted by the intake (finished in the month).</param>
/// <param name="DeliveriesRejected">Deliveries rejected by the intake (finished in the month).</param>
/// <param name="DeliveriesPending">Deliveries started in the month and still pending (stopped by an outage of ours, waiting for a retry) when the report was made.</param>
/// <param name="DeliveriesWithdrawn">Deliveries withdrawn (Rücknahme) in the month.</param>
/// <param name="FilesScanned">Files sent to clamd by the scan stage in the month (every attempt counts).</param>
/// <param name="BytesScanned">Their bytes.</param>
/// <param name="PromotionsByStage">Completed promotions in the month, by target stage.</param>
/// <param name="StorageBytesByStage">Bytes of the distinct manifests and blobs of the images in each stage at the month's end.</param>
/// <param name="StorageImagesWithoutSizes">Images in a stage whose promotion recorded no sizes (promoted before the engine recorded them): not in <paramref name="StorageBytesByStage"/>.</param>
/// <param name="FinalStage">The pipeline's last stage (Produktion by default).</param>
/// <param name="ToFinalSeconds">For each delivery promoted into the last stage in the month: seconds from its intake start (first attempt) to that promotion.</param>
public sealed record MeteringRow(
    string Tenant,
    string Pipeline,
    long DeliveriesAccepted,
    long DeliveriesRejected,
    long DeliveriesPending,
    long DeliveriesWithdrawn,
    long FilesScanned,
    long BytesScanned,
    IReadOnlyDictionary<string, long> PromotionsByStage,
    IReadOnlyDictionary<string, long> StorageBytesByStage,
    long StorageImagesWithoutSizes,
    string FinalStage,
    IReadOnlyList<double> ToFinalSeconds)
{
    public long Promotions => PromotionsByStage.Values.Sum();

    public long StorageBytes => StorageBytesByStage.Values.Sum();

    public int ReachedFinal => ToFinalSeconds.Count;

    /// <summary>The median of <see cref="ToFinalSeconds"/> (mean of the two middle values for an even count), or null.</summary>
    public double? ToFinalMedianSeconds
    {
        get
        {
            if (ToFinalSeconds.Count == 0) return null;
            var sorted = ToFinalSeconds.Order().ToList();
            var mid = sorted.Count / 2;
            return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        }
    }

    public double? ToFinalMaxSeconds => ToFinalSeconds.Count == 0 ? null : ToFinalSeconds.Max();
}

/// <summary>A month's metering: one row per tenant and application, sorted by tenant, then pipeline (ordinal).</summary>
/// <param name="Tenant">The tenant the report was limited to, or null for all.</param>
/// <param name="Complete">False when the month had not ended when the report was made.</param>
public sealed record MeteringReport(MeteringPeriod Period, string? Tenant, DateTimeOffset GeneratedAt, bool Complete, IReadOnlyList<MeteringRow> Rows);
