using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Pipeline.Engine.Observability;

/// <summary>
/// The engine's instruments (meter <see cref="MeterName"/>), named in the OpenTelemetry semantic-convention style;
/// the Prometheus exporter turns <c>pipeline.deliveries</c> into <c>pipeline_deliveries_total</c> and
/// <c>pipeline.stage.duration</c> (seconds) into <c>pipeline_stage_duration_seconds</c>. Tags carry pipeline and
/// stage names only: never a tag name, digest, path or anything a supplier chose freely beyond the pipeline's name.
/// </summary>
public static class EngineMetrics
{
    public const string MeterName = "Pipeline.Engine";

    private static readonly Meter Meter = new(MeterName, typeof(EngineMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> Deliveries = Meter.CreateCounter<long>("pipeline.deliveries", "{delivery}",
        "Deliveries decided by the stages, by pipeline, verdict (accepted, rejected, pending, interrupted) and the stage that decided");

    private static readonly Histogram<double> StageDuration = Meter.CreateHistogram<double>("pipeline.stage.duration", "s",
        "How long each stage of a delivery ran, by pipeline, stage and outcome (passed, failed)");

    private static readonly Counter<long> ScannedBytes = Meter.CreateCounter<long>("pipeline.scan.bytes", "By",
        "Bytes of delivered files sent to clamd, by pipeline");

    private static readonly Counter<long> ScannedFiles = Meter.CreateCounter<long>("pipeline.scan.files", "{file}",
        "Delivered files sent to clamd, by pipeline");

    public static void DeliveryDecided(string pipeline, string verdict, string stage) =>
        Deliveries.Add(1, new TagList { { "pipeline", pipeline }, { "verdict", verdict }, { "stage", stage } });

    public static void StageFinished(string pipeline, string stage, string outcome, TimeSpan elapsed) =>
        StageDuration.Record(elapsed.TotalSeconds, new TagList { { "pipeline", pipeline }, { "stage", stage }, { "outcome", outcome } });

    public static void Scanned(string pipeline, long files, long bytes)
    {
        var tags = new TagList { { "pipeline", pipeline } };
        ScannedFiles.Add(files, tags);
        ScannedBytes.Add(bytes, tags);
    }
}
