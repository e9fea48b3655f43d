using System.Security.Cryptography;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>What was read of a container's log: digest, size, whether it was cut off, and a printable tail.</summary>
internal sealed record CollectedLog(string Digest, long Bytes, bool Truncated, string Excerpt)
{
    public static readonly CollectedLog None = new("sha256:" + Convert.ToHexStringLower(SHA256.HashData([])), 0, false, "");
}

/// <summary>
/// Reads a container's stdout and stderr (as Docker multiplexes them) and keeps the last
/// <c>cap</c> bytes as evidence: the end of a log says why something failed. Reading stops at
/// what Docker can have kept (json-file rotation: two files of <see cref="DockerHardening.LogFileFactor"/>
/// times the cap).
/// </summary>
internal static class DockerLogs
{
    public const int ExcerptBytes = 2048;

    public static async Task<CollectedLog> CollectAsync(IDockerClient client, string containerId, int cap, CancellationToken cancellationToken)
    {
        var parameters = new ContainerLogsParameters { ShowStdout = true, ShowStderr = true, Follow = false, Timestamps = false };
        using var stream = await client.Containers.GetContainerLogsAsync(containerId, false, parameters, cancellationToken).ConfigureAwait(false);
        var window = new byte[cap];
        var length = 0;
        var buffer = new byte[16 * 1024];
        long total = 0;
        var guard = 2L * DockerHardening.LogFileFactor * cap + 64 * 1024;
        while (total < guard)
        {
            var read = await stream.ReadOutputAsync(buffer, 0, (int)Math.Min(buffer.Length, guard - total), cancellationToken).ConfigureAwait(false);
            if (read.EOF || read.Count == 0) break;
            total += read.Count;
            Keep(window, ref length, buffer.AsSpan(0, read.Count));
        }
        var kept = window.AsSpan(0, length);
        var excerpt = kept.Length > ExcerptBytes ? kept[^ExcerptBytes..] : kept;
        return new CollectedLog("sha256:" + Convert.ToHexStringLower(SHA256.HashData(kept)), length, total > length, Printable(excerpt));
    }

    /// <summary>Appends <paramref name="data"/> to <paramref name="window"/>, keeping only its last <c>window.Length</c> bytes.</summary>
    private static void Keep(byte[] window, ref int length, ReadOnlySpan<byte> data)
    {
        if (data.Length >= window.Length)
        {
            data[^window.Length..].CopyTo(window);
            length = window.Length;
            return;
        }
        var keep = Math.Min(length, window.Length - data.Length);
        window.AsSpan(length - keep, keep).CopyTo(window);
        data.CopyTo(window.AsSpan(keep));
        length = keep + data.Length;
    }

    /// <summary>The container's text as printable characters (newlines and tabs kept, other controls as '?').</summary>
    public static string Printable(ReadOnlySpan<byte> bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        var sb = new StringBuilder(text.Length);
        foreach (var c in text) sb.Append(c is '\n' or '\t' || !char.IsControl(c) ? c : '?');
        return sb.ToString();
    }
}
