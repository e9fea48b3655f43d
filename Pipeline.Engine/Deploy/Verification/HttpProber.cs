using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Engine.Deploy.Verification;

/// <summary>What the probe saw: whether it passed, how often it tried, the last status and a digest of the last body.</summary>
public sealed record ProbeResult(bool Passed, int Attempts, int? LastStatus, string? BodyDigest, string Detail, TimeSpan Elapsed);

/// <summary>
/// Verifies a GitOps deployment over HTTP: GET the probe URL until it answers the expected status
/// with a body containing the expected version (Argo CD / Flux apply asynchronously), or give up
/// after the probe's timeout. Bodies are read up to 64 KiB; redirects are not followed.
/// </summary>
public sealed class HttpProber(TimeProvider time, HttpMessageHandler? handler = null)
{
    private const int MaxBody = 64 * 1024;

    public async Task<ProbeResult> ProbeAsync(HttpProbe probe, string tag, CancellationToken ct)
    {
        var expected = probe.VersionFor(tag);
        var started = time.GetTimestamp();
        using var client = new HttpClient(handler ?? new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false }, disposeHandler: handler is null)
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        var attempts = 0;
        int? status = null;
        string? digest = null;
        var detail = "no answer yet";
        while (true)
        {
            attempts++;
            var left = probe.Timeout - time.GetElapsedTime(started);
            if (left <= TimeSpan.Zero) break;
            using var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var lastChance = left <= probe.Interval * 4;
            attemptCts.CancelAfter(lastChance ? left : probe.Interval * 4);
            try
            {
                using var response = await client.GetAsync(probe.Url, HttpCompletionOption.ResponseHeadersRead, attemptCts.Token).ConfigureAwait(false);
                status = (int)response.StatusCode;
                var body = await ReadCappedAsync(response, attemptCts.Token).ConfigureAwait(false);
                digest = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(body));
                var text = Encoding.UTF8.GetString(body);
                var hasVersion = text.Contains(expected, StringComparison.Ordinal);
                if (status == probe.ExpectStatus && hasVersion)
                    return new ProbeResult(true, attempts, status, digest, $"{probe.Url} answered {status} with version {expected}", time.GetElapsedTime(started));
                detail = status != probe.ExpectStatus
                    ? $"{probe.Url} answered {status}, expected {probe.ExpectStatus}"
                    : $"{probe.Url} answered {status} without the version '{expected}' (body {digest})";
            }
            catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
            {
                // An attempt cut off by the overall deadline says less than the answer before it.
                var cutOff = e is OperationCanceledException && lastChance && attempts > 1;
                if (!cutOff) detail = e is OperationCanceledException ? $"{probe.Url} did not answer in time" : $"{probe.Url} is unreachable: {e.Message}";
            }

            var wait = probe.Timeout - time.GetElapsedTime(started);
            if (wait <= TimeSpan.Zero) break;
            await Task.Delay(wait < probe.Interval ? wait : probe.Interval, time, ct).ConfigureAwait(false);
        }

        return new ProbeResult(false, attempts, status, digest,
            string.Create(CultureInfo.InvariantCulture, $"no answer {probe.ExpectStatus} with version '{expected}' from {probe.Url} within {probe.Timeout.TotalSeconds:0.#}s ({attempts} attempts); last: {detail}"),
            time.GetElapsedTime(started));
    }

    private static async Task<byte[]> ReadCappedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while (buffer.Length < MaxBody && (n = await stream.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, MaxBody - buffer.Length)), ct).ConfigureAwait(false)) > 0)
            buffer.Write(chunk, 0, n);
        return buffer.ToArray();
    }
}
