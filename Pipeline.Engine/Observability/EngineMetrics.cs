using System.Diagnostics;
using System.Diagnostics.Metrics;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Engine.Observability;

/// <summary>
/// The engine's instruments (meter <see cref="MeterName"/>), named in the OpenTelemetry semantic-convention style;
/// the Prometheus exporter turns <c>pipeline.deliveries</c> into <c>pipeline_deliveries_total</c> and
/// <c>pipeline.stage.duration</c> (seconds) into <c>pipeline_stage_duration_seconds</c>. Tags carry tenant, pipeline and
/// stage names only: never a tag name, digest, path or anything a supplier chose freely beyond the pipeline's name.
/// Every instrument carries <c>tenant</c> (the id of the tenant the pipeline belongs to in engine.yaml <c>tenants:</c>;
/// <see cref="NoTenant"/>, the empty string, when it belongs to none or no tenants are configured) and <c>pipeline</c>.
/// </summary>
public static class EngineMetrics
{
    public const string MeterName = "Pipeline.Engine";

    /// <summary>The tenant label of a pipeline without a tenant (Prometheus treats an empty label like an absent one).</summary>
    public const string NoTenant = "";

    private static readonly Meter Meter = new(MeterName, typeof(EngineMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> Deliveries = Meter.CreateCounter<long>("pipeline.deliveries", "{delivery}",
        "Deliveries decided by the stages, by tenant, pipeline, verdict (accepted, rejected, pending, interrupted) and the stage that decided");

    private static readonly Histogram<double> StageDuration = Meter.CreateHistogram<double>("pipeline.stage.duration", "s",
        "How long each stage of a delivery ran, by tenant, pipeline, stage and outcome (passed, failed)");

    private static readonly Counter<long> ScannedBytes = Meter.CreateCounter<long>("pipeline.scan.bytes", "By",
        "Bytes of delivered files sent to clamd, by tenant and pipeline");

    private static readonly Counter<long> ScannedFiles = Meter.CreateCounter<long>("pipeline.scan.files", "{file}",
        "Delivered files sent to clamd, by tenant and pipeline");

    private static readonly Counter<long> Promotions = Meter.CreateCounter<long>("pipeline.promotions", "{promotion}",
        "Completed promotions of a delivery into a stage, by tenant, pipeline and target stage");

    /// <summary>The <c>tenant</c> label of <paramref name="pipeline"/>: its tenant's id, or <see cref="NoTenant"/>.</summary>
    public static string TenantOf(TenantDirectory tenants, string pipeline) => tenants.TenantOf(pipeline)?.Id ?? NoTenant;

    public static void DeliveryDecided(string tenant, string pipeline, string verdict, string stage) =>
        Deliveries.Add(1, new TagList { { "tenant", tenant }, { "pipeline", pipeline }, { "verdict", verdict }, { "stage", stage } });

    public static void StageFinished(string tenant, string pipeline, string stage, string outcome, TimeSpan elapsed) =>
        StageDuration.Record(elapsed.TotalSeconds, new TagList { { "tenant", tenant }, { "pipeline", pipeline }, { "stage", stage }, { "outcome", outcome } });

    public static void Scanned(string tenant, string pipeline, long files, long bytes)
    {
        var tags = new TagList { { "tenant", tenant }, { "pipeline", pipeline } };
        ScannedFiles.Add(files, tags);
        ScannedBytes.Add(bytes, tags);
    }

    public static void Promoted(string tenant, string pipeline, string stage) =>
        Promotions.Add(1, new TagList { { "tenant", tenant }, { "pipeline", pipeline }, { "stage", stage } });
}
