using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Pipeline.Checkup.Scanning;

/// <summary>
/// One long-lived clamd connection in IDSESSION mode: several scans (<c>zFILDES</c> or <c>zINSTREAM</c>) are
/// pipelined on it and clamd runs them on its thread pool at the same time, answering <c>&lt;id&gt;: &lt;reply&gt;</c>
/// in completion order, where id is the 1-based number of the command in this session. A reader loop matches each
/// reply to its request by that id.
/// <para>Fails closed: a reply whose id is unknown, malformed or already answered, or any reply without an id,
/// poisons the whole session (every waiting scan gets a non-transient <see cref="ClamdErrors.Protocol"/> error);
/// a connection that closes or times out with scans still waiting fails those with a transient
/// <see cref="ClamdErrors.Protocol"/> / <see cref="ClamdErrors.Timeout"/> error so that the pool can scan them again
/// on a fresh connection. A scan is only ever <see cref="ClamdVerdict.Clean"/> on an explicit
/// <c>&lt;id&gt;: fd[N]: OK</c> (FILDES) or <c>&lt;id&gt;: stream: OK</c> (INSTREAM) for its own id.</para>
/// </summary>
public sealed class ClamdSession : IAsyncDisposable
{
    private const int MaxReplyLength = 8 * 1024;

    private readonly Socket _socket;
    private readonly ClamdClientOptions _options;
    private readonly SemaphoreSlim _write = new(1, 1);
    private readonly ConcurrentDictionary<long, Pending> _pending = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reader;
    private long _lastId;
    private volatile Exception? _fault;
    private volatile bool _readerDone;
    private int _drainScheduled;
    private int _disposed;
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(2);

    private sealed record Pending(TaskCompletionSource<string> Reply, string ExpectedPrefix);

    private ClamdSession(ClamdEndpoint endpoint, Socket socket, ClamdClientOptions options)
    {
        Endpoint = endpoint;
        _socket = socket;
        _options = options;
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>Where this session is connected.</summary>
    public ClamdEndpoint Endpoint { get; }

    /// <summary>Scans sent on this session and not answered yet.</summary>
    public int InFlight => _pending.Count;

    /// <summary>Scans sent on this session so far (the id of the last one).</summary>
    public long Sent => Interlocked.Read(ref _lastId);

    /// <summary>True once the session is unusable (dropped, timed out, protocol error or disposed); open a new one.</summary>
    public bool IsFaulted => _fault is not null;

    /// <summary>Connects and starts an IDSESSION. Throws <see cref="ClamdException"/> (transient) when clamd cannot be reached.</summary>
    public static async Task<ClamdSession> OpenAsync(ClamdEndpoint endpoint, ClamdClientOptions options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(options);
        var socket = await ClamdClient.ConnectAsync(endpoint, options, ct).ConfigureAwait(false);
        try
        {
            await SendAllAsync(socket, "zIDSESSION\0"u8.ToArray(), endpoint, options, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            socket.Dispose();
            throw new ClamdException(ClamdErrors.Protocol, $"clamd at {endpoint} closed the connection on IDSESSION: {e.Message}", true, e);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new ClamdSession(endpoint, socket, options);
    }

    /// <summary>Sends PING in the session and waits for PONG (checks that the session and clamd are alive).</summary>
    public async Task PingAsync(CancellationToken ct)
    {
        var reply = await RequestAsync("zPING\0"u8.ToArray(), "", null, null, ct).ConfigureAwait(false);
        if (reply != "PONG")
            throw Poison($"clamd at {Endpoint} answered PING in a session with '{Clip(reply)}' instead of PONG.");
    }

    /// <summary>Passes the open <paramref name="file"/> to clamd (FILDES; Unix socket endpoints only) and returns its verdict.</summary>
    public async Task<ClamdScanResult> ScanFileDescriptorAsync(SafeFileHandle file, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (!Endpoint.IsUnixSocket)
            throw new ClamdException(ClamdErrors.BadEndpoint, $"clamd at {Endpoint} is not a Unix socket; file descriptors can only be passed over unix:// endpoints.", false);
        var reply = await RequestAsync("zFILDES\0"u8.ToArray(), "fd[", file, null, ct).ConfigureAwait(false);
        return ClamdClient.ParseScanReply(reply);
    }

    /// <summary>Streams <paramref name="content"/> (INSTREAM, 64 KiB chunks) and returns clamd's verdict.</summary>
    public async Task<ClamdScanResult> ScanAsync(Stream content, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(content);
        var reply = await RequestAsync("zINSTREAM\0"u8.ToArray(), "stream: ", null, content, ct).ConfigureAwait(false);
        return ClamdClient.ParseScanReply(reply);
    }

    /// <summary>
    /// Sends one command (plus its descriptor or stream) under the write lock, so that ids follow the order in which
    /// clamd receives commands, then waits for the reply with that id. Returns the reply without the id prefix.
    /// </summary>
    private async Task<string> RequestAsync(byte[] command, string expectedPrefix, SafeFileHandle? file, Stream? content, CancellationToken ct)
    {
        ThrowIfFaulted();
        Pending pending;
        long id;
        await _write.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            ThrowIfFaulted();
            id = ++_lastId;
            pending = new Pending(new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously), expectedPrefix);
            _pending[id] = pending;
            if (_readerDone) FailPending();
            try
            {
                await SendAllAsync(_socket, command, Endpoint, _options, ct).ConfigureAwait(false);
                if (file is not null)
                {
                    var added = false;
                    file.DangerousAddRef(ref added);
                    try
                    {
                        await FdPassing.SendAsync(_socket, file.DangerousGetHandle(), _options.ReadTimeout, ct).ConfigureAwait(false);
                    }
                    finally
                    {
                        if (added) file.DangerousRelease();
                    }
                }
                if (content is not null) await SendStreamAsync(content, ct).ConfigureAwait(false);
            }
            catch (ContentReadFailure f)
            {
                // Half a stream was sent: the session is out of step, and the error is the caller's to see.
                Fault(new ClamdException(ClamdErrors.Protocol, $"a stream sent to clamd at {Endpoint} was aborted by the client ({f.InnerException!.Message}).", true), readerGone: false);
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(f.InnerException!).Throw();
                throw;
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // clamd may have answered (e.g. "INSTREAM size limit exceeded. ERROR") and closed: the reader
                // still delivers that answer; otherwise the whole session is dropped.
                Fault(new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} closed the session while command {id} was sent: {e.Message}", true, e), readerGone: false);
            }
            catch (Exception e) when (e is ClamdException or OperationCanceledException && !pending.Reply.Task.IsCompleted)
            {
                // A half-sent command leaves the session out of step: nothing more can be sent on it.
                Fault(e as ClamdException ?? new ClamdException(ClamdErrors.Protocol, $"sending to clamd at {Endpoint} was cancelled mid-command.", true), readerGone: false);
                throw;
            }
        }
        finally
        {
            _write.Release();
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.ReadTimeout);
        try
        {
            return await pending.Reply.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            var e = new ClamdException(ClamdErrors.Timeout, $"clamd at {Endpoint} did not answer command {id} of a session within {_options.ReadTimeout.TotalSeconds:0.###} s.", true);
            Fault(e, readerGone: false);
            throw e;
        }
    }

    private async Task SendStreamAsync(Stream content, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4 + ClamdClient.ChunkSize);
        try
        {
            while (true)
            {
                int n;
                try
                {
                    n = await ClamdClient.FillAsync(content, buffer.AsMemory(4, ClamdClient.ChunkSize), ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    throw new ContentReadFailure(e); // the caller's stream failed, not clamd
                }
                BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)n);
                await SendAllAsync(_socket, buffer.AsMemory(0, 4 + n), Endpoint, _options, ct).ConfigureAwait(false);
                if (n == 0) break;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, ClamdEndpoint endpoint, ClamdClientOptions options, CancellationToken ct)
    {
        using var io = CancellationTokenSource.CreateLinkedTokenSource(ct);
        io.CancelAfter(options.ReadTimeout);
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
            throw new ClamdException(ClamdErrors.Timeout, $"Sending to clamd at {endpoint} stalled for more than {options.ReadTimeout.TotalSeconds:0.###} s.", true);
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[4096];
        var reply = new MemoryStream();
        try
        {
            while (true)
            {
                int n;
                try
                {
                    n = await _socket.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
                {
                    Fault(new ClamdException(ClamdErrors.Protocol, $"the session with clamd at {Endpoint} was dropped: {e.Message}", true, e as SocketException), readerGone: true);
                    return;
                }
                if (n == 0)
                {
                    var partial = reply.Length > 0 ? $" in the middle of a reply ('{Clip(Encoding.UTF8.GetString(reply.GetBuffer(), 0, (int)reply.Length))}')" : "";
                    Fault(new ClamdException(ClamdErrors.Protocol, $"clamd at {Endpoint} closed the session{partial} with {_pending.Count} scan(s) unanswered.", true), readerGone: true);
                    return;
                }
                var start = 0;
                while (start < n)
                {
                    var nul = Array.IndexOf(buffer, (byte)0, start, n - start);
                    var end = nul < 0 ? n : nul;
                    reply.Write(buffer, start, end - start);
                    if (reply.Length > MaxReplyLength)
                    {
                        Fault(Poison($"clamd at {Endpoint} sent a session reply longer than {MaxReplyLength} bytes."), readerGone: true);
                        return;
                    }
                    if (nul < 0) break;
                    var text = Encoding.UTF8.GetString(reply.GetBuffer(), 0, (int)reply.Length).TrimEnd('\n', '\r');
                    reply.SetLength(0);
                    start = nul + 1;
                    if (!Deliver(text)) return;
                }
            }
        }
        catch (Exception e)
        {
            Fault(new ClamdException(ClamdErrors.Protocol, $"reading the session with clamd at {Endpoint} failed: {e.Message}", true, e), readerGone: true);
        }
    }

    /// <summary>Matches one reply to its request; false (session poisoned) when it cannot be matched strictly.</summary>
    private bool Deliver(string text)
    {
        var colon = text.IndexOf(": ", StringComparison.Ordinal);
        var idText = colon > 0 ? text[..colon] : "";
        if (idText.Length is 0 or > 18 || idText[0] == '0' || !idText.All(char.IsAsciiDigit)
            || !long.TryParse(idText, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            Fault(Poison($"clamd at {Endpoint} sent a session reply without a request id: '{Clip(text)}'."), readerGone: true);
            return false;
        }
        if (!_pending.TryRemove(id, out var pending))
        {
            Fault(Poison($"clamd at {Endpoint} answered request {id}, which is not waiting for an answer in this session: '{Clip(text)}'."), readerGone: true);
            return false;
        }
        var body = text[(colon + 2)..];
        var kind = body.StartsWith("stream: ", StringComparison.Ordinal) ? "stream: " : body.StartsWith("fd[", StringComparison.Ordinal) ? "fd[" : "";
        if (kind.Length > 0 && kind != pending.ExpectedPrefix)
        {
            // A scan answer for a different kind of command than the one sent: the ids cannot be trusted.
            var e = Poison($"clamd at {Endpoint} answered request {id} with '{Clip(text)}', which does not belong to the command sent.");
            pending.Reply.TrySetException(e);
            Fault(e, readerGone: true);
            return false;
        }
        pending.Reply.TrySetResult(body);
        return true;
    }

    private ClamdException Poison(string message) => new(ClamdErrors.Protocol, message + " The session is closed and nothing on it is taken as scanned.", false);

    private void Fault(Exception e, bool readerGone)
    {
        Interlocked.CompareExchange(ref _fault, e, null);
        if (readerGone) _readerDone = true;
        if (_readerDone)
        {
            FailPending();
        }
        else if (Interlocked.Exchange(ref _drainScheduled, 1) == 0)
        {
            // Let the reader deliver what clamd still says (e.g. "INSTREAM size limit exceeded. ERROR" before it
            // closed), then stop it; whatever is still unanswered then fails.
            _ = Task.Delay(DrainGrace).ContinueWith(_ =>
            {
                try { _stop.Cancel(); } catch (ObjectDisposedException) { }
            }, TaskScheduler.Default);
        }
    }

    private void FailPending()
    {
        var e = _fault ?? new ObjectDisposedException(nameof(ClamdSession));
        foreach (var id in _pending.Keys)
            if (_pending.TryRemove(id, out var p))
                p.Reply.TrySetException(e);
    }

    private void ThrowIfFaulted()
    {
        if (_fault is { } f)
            throw f as ClamdException ?? new ClamdException(ClamdErrors.Protocol, $"the session with clamd at {Endpoint} is closed: {f.Message}", true, f);
    }

    /// <summary>Ends the session (<c>zEND</c>, best effort) and closes the connection; scans still waiting fail.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Interlocked.CompareExchange(ref _fault, new ClamdException(ClamdErrors.Protocol, $"the session with clamd at {Endpoint} was closed by this client.", true), null);
        if (await _write.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false))
        {
            try
            {
                using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                await _socket.SendAsync("zEND\0"u8.ToArray(), SocketFlags.None, quick.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
            finally
            {
                _write.Release();
            }
        }
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
        await _stop.CancelAsync().ConfigureAwait(false);
        _socket.Dispose();
        try { await _reader.ConfigureAwait(false); } catch (Exception e) when (e is OperationCanceledException or SocketException) { }
        FailPending();
        _stop.Dispose();
        _write.Dispose();
    }

    private sealed class ContentReadFailure(Exception inner) : Exception(inner.Message, inner);

    private static string Clip(string s) => s.Length > 200 ? s[..200] + "..." : s;
}
