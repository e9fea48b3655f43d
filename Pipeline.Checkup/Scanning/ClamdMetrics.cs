using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Pipeline.Checkup.Scanning;

/// <summary>
/// What the clamd pool did (meter <see cref="MeterName"/>, plain <see cref="System.Diagnostics.Metrics"/>: any listener,
/// OpenTelemetry or another, may collect it): scans by endpoint and verdict, and endpoints taken out of the pool.
/// </summary>
public static class ClamdMetrics
{
    public const string MeterName = "Pipeline.Checkup.Clamd";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Counter<long> Scans = Meter.CreateCounter<long>("pipeline.clamd.scans", "{scan}",
        "Streams or files clamd answered for, by endpoint and verdict (clean, infected, error)");

    private static readonly Counter<long> EndpointFailures = Meter.CreateCounter<long>("pipeline.clamd.endpoint.failures", "{failure}",
        "Times an endpoint was taken out of the pool (unreachable, timed out, dropped a stream)");

    internal static void Scanned(ClamdEndpoint endpoint, ClamdVerdict verdict) =>
        Scans.Add(1, new TagList { { "endpoint", endpoint.ToString() }, { "verdict", verdict.ToString().ToLowerInvariant() } });

    internal static void EndpointDown(ClamdEndpoint endpoint) =>
        EndpointFailures.Add(1, new TagList { { "endpoint", endpoint.ToString() } });
}
