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

/// <summary>Reads a container's stdout and stderr (as Docker multiplexes them), at most a cap of bytes.</summary>
internal static class DockerLogs
{
    public const int ExcerptBytes = 2048;

    public static async Task<CollectedLog> CollectAsync(IDockerClient client, string containerId, int cap, CancellationToken cancellationToken)
    {
        var parameters = new ContainerLogsParameters { ShowStdout = true, ShowStderr = true, Follow = false, Timestamps = false };
        using var stream = await client.Containers.GetContainerLogsAsync(containerId, false, parameters, cancellationToken).ConfigureAwait(false);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var tail = new byte[ExcerptBytes];
        var tailLength = 0;
        var buffer = new byte[16 * 1024];
        long total = 0;
        var truncated = false;
        while (true)
        {
            var want = (int)Math.Min(buffer.Length, cap - total);
            if (want <= 0)
            {
                // Whatever is left is beyond the cap: look for one more byte to know whether it was cut.
                var probe = await stream.ReadOutputAsync(buffer, 0, 1, cancellationToken).ConfigureAwait(false);
                truncated = !probe.EOF && probe.Count > 0;
                break;
            }
            var read = await stream.ReadOutputAsync(buffer, 0, want, cancellationToken).ConfigureAwait(false);
            if (read.EOF || read.Count == 0) break;
            hash.AppendData(buffer, 0, read.Count);
            total += read.Count;
            Keep(tail, ref tailLength, buffer.AsSpan(0, read.Count));
        }
        return new CollectedLog("sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset()), total, truncated, Printable(tail.AsSpan(0, tailLength)));
    }

    /// <summary>Keeps the last <see cref="ExcerptBytes"/> bytes seen.</summary>
    private static void Keep(byte[] tail, ref int length, ReadOnlySpan<byte> data)
    {
        if (data.Length >= tail.Length)
        {
            data[^tail.Length..].CopyTo(tail);
            length = tail.Length;
            return;
        }
        var keep = Math.Min(length, tail.Length - data.Length);
        tail.AsSpan(length - keep, keep).CopyTo(tail);
        data.CopyTo(tail.AsSpan(keep));
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
