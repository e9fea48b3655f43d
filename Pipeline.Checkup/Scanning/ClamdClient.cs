using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace Pipeline.Checkup.Scanning;

/// <summary>Timeouts for <see cref="ClamdClient"/>. A whole scan is bounded by the caller's cancellation token.</summary>
public sealed record ClamdClientOptions
{
    /// <summary>How long to wait for the connection to clamd.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long any single read or write may wait (including clamd's answer after the last chunk).</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(120);
}

/// <summary>clamd's STATS: the raw text plus the parsed thread and queue figures (-1 when clamd did not say).</summary>
public sealed record ClamdStats(string Raw, int LiveThreads, int IdleThreads, int MaxThreads, int QueueItems, string State)
{
    internal static ClamdStats Parse(string raw)
    {
        int live = -1, idle = -1, max = -1, queue = -1;
        var state = "";
        foreach (var line in raw.Split('\n', StringSplitOptions.TrimEntries))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (line.StartsWith("STATE:", StringComparison.Ordinal)) state = line["STATE:".Length..].Trim();
            else if (line.StartsWith("QUEUE:", StringComparison.Ordinal) && parts.Length > 1) queue = Num(parts[1]);
            else if (line.StartsWith("THREADS:", StringComparison.Ordinal))
            {
                for (var i = 1; i + 1 < parts.Length; i++)
                {
                    switch (parts[i])
                    {
                        case "live": live = Num(parts[i + 1]); break;
                        case "idle": idle = Num(parts[i + 1]); break;
                        case "max": max = Num(parts[i + 1]); break;
                    }
                }
            }
        }
        return new ClamdStats(raw, live, idle, max, queue, state);
    }

    private static int Num(string s) => int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : -1;
}

/// <summary>The verdict clamd gave for one stream.</summary>
public enum ClamdVerdict { Clean, Infected, Error }

/// <summary>clamd's answer for one stream: the verdict, the signature name when infected, and the raw reply.</summary>
public sealed record ClamdScanResult(ClamdVerdict Verdict, string? Signature, string RawReply);

/// <summary>
/// A minimal clamd client (PING, VERSION, VERSIONCOMMANDS, STATS, INSTREAM) over TCP or a Unix socket, one connection per
/// command. A stream is sent as <c>zINSTREAM\0</c> then 64 KiB chunks <c>&lt;uint32 BE length&gt;&lt;bytes&gt;</c>
/// ending with a zero-length chunk. Anything but an explicit <c>stream: OK</c> is never reported clean:
/// size-limit errors and a connection closed by clamd mid-stream are <see cref="ClamdVerdict.Error"/>;
/// unreachable clamd, timeouts and unintelligible answers are <see cref="ClamdException"/>.
/// </summary>
public sealed class ClamdClient(ClamdEndpoint endpoint, ClamdClientOptions options)
{
    /// <summary>Size of each INSTREAM chunk.</summary>
    public const int ChunkSize = 64 * 1024;
    private const int MaxReplyLength = 8 * 1024;

    public ClamdEndpoint Endpoint { get; } = endpoint ?? throw new ArgumentNullException(nameof(endpoint));

    private readonly ClamdClientOptions _options = options ?? throw new ArgumentNullException(nameof(options));

    /// <summary>Sends PING; throws unless clamd answers PONG.</summary>
    public async Task PingAsync(CancellationToken ct)
    {
        var reply = await CommandAsync("zPING\0"u8.ToArray(), ct).ConfigureAwait(false);
        if (reply != "PONG")
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} answered PING with '{Clip(reply)}' instead of PONG.", false);
    }

    /// <summary>Returns clamd's VERSION answer, e.g. <c>ClamAV 1.4.6</c> or <c>ClamAV 1.4.6/27000/...</c>.</summary>
    public async Task<string> VersionAsync(CancellationToken ct)
    {
        var reply = await CommandAsync("zVERSION\0"u8.ToArray(), ct).ConfigureAwait(false);
        if (!reply.StartsWith("ClamAV ", StringComparison.Ordinal))
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} answered VERSION with '{Clip(reply)}'.", false);
        return reply;
    }

    /// <summary>Returns the commands clamd supports (VERSIONCOMMANDS), e.g. <c>PING</c>, <c>INSTREAM</c>, <c>STATS</c>.</summary>
    public async Task<IReadOnlyList<string>> VersionCommandsAsync(CancellationToken ct)
    {
        var reply = await CommandAsync("zVERSIONCOMMANDS\0"u8.ToArray(), ct).ConfigureAwait(false);
        var at = reply.IndexOf("| COMMANDS:", StringComparison.Ordinal);
        if (!reply.StartsWith("ClamAV ", StringComparison.Ordinal) || at < 0)
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} answered VERSIONCOMMANDS with '{Clip(reply)}'.", false);
        return reply[(at + "| COMMANDS:".Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    }

    /// <summary>Returns clamd's STATS answer (pools, threads, queue, memory), up to and without the final <c>END</c>.</summary>
    public async Task<ClamdStats> StatsAsync(CancellationToken ct)
    {
        var reply = await CommandAsync("zSTATS\0"u8.ToArray(), ct).ConfigureAwait(false);
        if (!reply.StartsWith("POOLS:", StringComparison.Ordinal) || !reply.TrimEnd().EndsWith("END", StringComparison.Ordinal))
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} answered STATS with '{Clip(reply)}'.", false);
        return ClamdStats.Parse(reply);
    }

    /// <summary>Streams <paramref name="content"/> to clamd (INSTREAM) and returns its verdict.</summary>
    public async Task<ClamdScanResult> ScanAsync(Stream content, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        using var socket = await ConnectAsync(ct).ConfigureAwait(false);
        using var io = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var buffer = ArrayPool<byte>.Shared.Rent(4 + ChunkSize);
        try
        {
            long sent = 0;
            var sending = false;
            try
            {
                sending = true;
                await SendAsync(socket, "zINSTREAM\0"u8.ToArray(), io, ct).ConfigureAwait(false);
                while (true)
                {
                    sending = false; // errors reading the content are the caller's, not clamd's
                    var n = await FillAsync(content, buffer.AsMemory(4, ChunkSize), ct).ConfigureAwait(false);
                    BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)n);
                    sending = true;
                    await SendAsync(socket, buffer.AsMemory(0, 4 + n), io, ct).ConfigureAwait(false);
                    sent += n;
                    if (n == 0) break;
                }
            }
            catch (Exception e) when (sending && e is IOException or SocketException or ObjectDisposedException)
            {
                // clamd closes the connection after e.g. "INSTREAM size limit exceeded. ERROR": read what it said.
                string? said = null;
                try
                {
                    said = await ReadReplyAsync(socket, io, ct).ConfigureAwait(false);
                }
                catch (Exception re) when (re is IOException or SocketException or ClamdException or ObjectDisposedException)
                {
                }
                var raw = string.IsNullOrEmpty(said)
                    ? $"connection closed by clamd after {sent} bytes were sent ({e.Message})"
                    : said;
                return new ClamdScanResult(ClamdVerdict.Error, null, raw);
            }

            var reply = await ReadReplyAsync(socket, io, ct).ConfigureAwait(false);
            return ParseScanReply(reply);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Lets clamd read an open file itself (FILDES: the descriptor is passed over the Unix socket), so
    /// no content is copied through the socket. Only for <see cref="ClamdEndpoint.IsUnixSocket"/> endpoints on
    /// the same host; clamd reads exactly the file this process opened (no path is involved).
    /// </summary>
    public async Task<ClamdScanResult> ScanFileDescriptorAsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!Endpoint.IsUnixSocket)
            throw new ClamdException(ClamdErrors.BadEndpoint, $"clamd at {Endpoint} is not a Unix socket; file descriptors can only be passed over unix:// endpoints.", false);
        using var socket = await ConnectAsync(ct).ConfigureAwait(false);
        using var io = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            await SendAsync(socket, "zFILDES\0"u8.ToArray(), io, ct).ConfigureAwait(false);
            var added = false;
            file.DangerousAddRef(ref added);
            try
            {
                FdPassing.Send(socket, file.DangerousGetHandle());
            }
            finally
            {
                if (added) file.DangerousRelease();
            }
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} closed the connection during FILDES: {e.Message}", true, e);
        }
        var reply = await ReadReplyAsync(socket, io, ct).ConfigureAwait(false);
        return ParseScanReply(reply);
    }

    /// <summary>Interprets an INSTREAM reply. Only <c>stream: OK</c> is clean; unknown text is an error.</summary>
    internal static ClamdScanResult ParseScanReply(string reply)
    {
        // INSTREAM answers "stream: ...", FILDES answers "fd[N]: ..."; anything else is unintelligible.
        var body = reply.StartsWith("stream: ", StringComparison.Ordinal) ? reply["stream: ".Length..]
            : reply.StartsWith("fd[", StringComparison.Ordinal) && reply.IndexOf("]: ", StringComparison.Ordinal) is > 3 and var close ? reply[(close + 3)..]
            : null;
        if (body == "OK") return new ClamdScanResult(ClamdVerdict.Clean, null, reply);
        if (body is not null && body.EndsWith(" FOUND", StringComparison.Ordinal) && body.Length > " FOUND".Length)
            return new ClamdScanResult(ClamdVerdict.Infected, body[..^" FOUND".Length], reply);
        return new ClamdScanResult(ClamdVerdict.Error, null, reply);
    }

    private async Task<string> CommandAsync(byte[] command, CancellationToken ct)
    {
        using var socket = await ConnectAsync(ct).ConfigureAwait(false);
        using var io = CancellationTokenSource.CreateLinkedTokenSource(ct);
        try
        {
            await SendAsync(socket, command, io, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} closed the connection: {e.Message}", true, e);
        }
        return await ReadReplyAsync(socket, io, ct).ConfigureAwait(false);
    }

    private Task<Socket> ConnectAsync(CancellationToken ct) => ConnectAsync(Endpoint, _options, ct);

    internal static async Task<Socket> ConnectAsync(ClamdEndpoint Endpoint, ClamdClientOptions _options, CancellationToken ct)
    {
        var endPoint = Endpoint.ToEndPoint();
        var socket = Endpoint.IsUnixSocket
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.ConnectTimeout);
        try
        {
            while (true)
            {
                try
                {
                    await socket.ConnectAsync(endPoint, timeout.Token).ConfigureAwait(false);
                    return socket;
                }
                catch (SocketException e) when (Endpoint.IsUnixSocket && e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain)
                {
                    // A full listen backlog (clamd's MaxConnectionQueueLength) on a Unix socket: clamd is busy, not gone.
                    // Wait a little and try again until the connect timeout says otherwise.
                    socket.Dispose();
                    await Task.Delay(5, timeout.Token).ConfigureAwait(false);
                    socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            socket.Dispose();
            throw new ClamdException(ClamdErrors.Timeout,
                $"Connecting to clamd at {Endpoint} took longer than {_options.ConnectTimeout.TotalSeconds:0.###} s; is clamd overloaded or firewalled?", true);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new ClamdException(ClamdErrors.Unreachable,
                $"Cannot connect to clamd at {Endpoint}: {e.SocketErrorCode} ({e.Message}). Check that clamd runs and listens there.", true, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task SendAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationTokenSource io, CancellationToken ct)
    {
        io.CancelAfter(_options.ReadTimeout);
        try
        {
            while (!data.IsEmpty)
            {
                var n = await socket.SendAsync(data, SocketFlags.None, io.Token).ConfigureAwait(false);
                data = data[n..];
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ClamdException(ClamdErrors.Timeout,
                $"Sending to clamd at {Endpoint} stalled for more than {_options.ReadTimeout.TotalSeconds:0.###} s.", true);
        }
    }

    /// <summary>Reads a NUL-terminated (z-command) reply, or up to EOF.</summary>
    private async Task<string> ReadReplyAsync(Socket socket, CancellationTokenSource io, CancellationToken ct)
    {
        io.CancelAfter(_options.ReadTimeout);
        var reply = new MemoryStream();
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None, io.Token).ConfigureAwait(false);
                if (n == 0) break;
                var nul = Array.IndexOf(buffer, (byte)0, 0, n);
                reply.Write(buffer, 0, nul < 0 ? n : nul);
                if (nul >= 0) break;
                if (reply.Length > MaxReplyLength)
                    throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} sent a reply longer than {MaxReplyLength} bytes.", false);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ClamdException(ClamdErrors.Timeout,
                $"clamd at {Endpoint} did not answer within {_options.ReadTimeout.TotalSeconds:0.###} s.", true);
        }
        if (reply.Length == 0)
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} closed the connection without an answer.", true);
        return Encoding.UTF8.GetString(reply.GetBuffer(), 0, (int)reply.Length).TrimEnd('\n', '\r');
    }

    internal static async Task<int> FillAsync(Stream content, Memory<byte> chunk, CancellationToken ct)
    {
        var total = 0;
        while (total < chunk.Length)
        {
            var n = await content.ReadAsync(chunk[total..], ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    private static string Clip(string s) => s.Length > 200 ? s[..200] + "..." : s;
}
