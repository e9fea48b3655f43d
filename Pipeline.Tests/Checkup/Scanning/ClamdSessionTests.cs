using System.Net.Sockets;
using System.Text;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Scanning;

/// <summary>IDSESSION against a scripted fake clamd: replies matched by id, and every way a session can go wrong fails closed.</summary>
public class ClamdSessionTests
{
    private static readonly ClamdClientOptions Fast = new() { ConnectTimeout = TimeSpan.FromSeconds(2), ReadTimeout = TimeSpan.FromSeconds(10) };

    /// <summary>Reads <c>zIDSESSION\0</c>, then <paramref name="count"/> INSTREAM commands (returning their contents).</summary>
    private static async Task<List<string>> ReadSessionStreams(Stream s, int count)
    {
        var head = await FakeClamd.ReadExactly(s, "zIDSESSION\0".Length);
        Assert.That(Encoding.ASCII.GetString(head), Is.EqualTo("zIDSESSION\0"));
        var contents = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var cmd = await FakeClamd.ReadExactly(s, "zINSTREAM\0".Length);
            Assert.That(Encoding.ASCII.GetString(cmd), Is.EqualTo("zINSTREAM\0"));
            var body = new MemoryStream();
            while (true)
            {
                var len = await FakeClamd.ReadExactly(s, 4);
                var n = (len[0] << 24) | (len[1] << 16) | (len[2] << 8) | len[3];
                if (n == 0) break;
                body.Write(await FakeClamd.ReadExactly(s, n));
            }
            contents.Add(Encoding.ASCII.GetString(body.ToArray()));
        }
        return contents;
    }

    private static Task Say(Stream s, string replies) => s.WriteAsync(Encoding.ASCII.GetBytes(replies)).AsTask();

    private static async Task<(ClamdSession Session, Task<ClamdScanResult>[] Scans)> SendThree(FakeClamd fake, params string[] contents)
    {
        var session = await ClamdSession.OpenAsync(ClamdEndpoint.Parse(fake.Endpoint), Fast, CancellationToken.None);
        var scans = new Task<ClamdScanResult>[contents.Length];
        // sequential sends (ids 1..n in this order), replies awaited together
        for (var i = 0; i < contents.Length; i++)
        {
            scans[i] = session.ScanAsync(new MemoryStream(Encoding.ASCII.GetBytes(contents[i])), CancellationToken.None);
            while (session.Sent < i + 1) await Task.Delay(1);
        }
        return (session, scans);
    }

    [Test]
    public async Task Replies_out_of_order_are_matched_to_their_request_by_id()
    {
        List<string>? received = null;
        await using var fake = new FakeClamd(async s =>
        {
            received = await ReadSessionStreams(s, 3);
            // clamd answers in completion order: the last one first
            await Say(s, "3: stream: OK\0" + "2: stream: Evil.Test FOUND\0" + "1: stream: OK\0");
            await FakeClamd.ReadExactly(s, "zEND\0".Length);
        });
        var (session, scans) = await SendThree(fake, "first", "EVIL", "third");
        await using (session)
        {
            var r = await Task.WhenAll(scans);
            Assert.That(received, Is.EqualTo(new[] { "first", "EVIL", "third" }));
            Assert.That(r[0].Verdict, Is.EqualTo(ClamdVerdict.Clean));
            Assert.That(r[1].Verdict, Is.EqualTo(ClamdVerdict.Infected));
            Assert.That(r[1].Signature, Is.EqualTo("Evil.Test"));
            Assert.That(r[2].Verdict, Is.EqualTo(ClamdVerdict.Clean));
            Assert.That(session.IsFaulted, Is.False);
        }
    }

    [Test]
    public async Task A_reply_for_an_id_that_was_never_sent_poisons_the_session()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await ReadSessionStreams(s, 2);
            await Say(s, "7: stream: OK\0");
            await Task.Delay(3000);
        });
        var (session, scans) = await SendThree(fake, "a", "b");
        await using (session)
        {
            foreach (var scan in scans)
            {
                var e = await Assert.ThrowsAsync<ClamdException>(async () => await scan);
                Assert.That(e!.Code, Is.EqualTo(ClamdErrors.Protocol));
                Assert.That(e.IsTransient, Is.False, "a protocol violation is not retried elsewhere as if nothing happened");
                Assert.That(e.Message, Does.Contain("request 7, which is not waiting"));
            }
            Assert.That(session.IsFaulted, Is.True);
        }
    }

    [Test]
    public async Task A_reply_without_an_id_is_never_taken_as_clean()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await ReadSessionStreams(s, 1);
            await Say(s, "stream: OK\0");
            await Task.Delay(3000);
        });
        var (session, scans) = await SendThree(fake, "a");
        await using (session)
        {
            var e = await Assert.ThrowsAsync<ClamdException>(async () => await scans[0]);
            Assert.That(e!.Code, Is.EqualTo(ClamdErrors.Protocol));
            Assert.That(e.Message, Does.Contain("without a request id"));
        }
    }

    [Test]
    public async Task A_reply_of_the_wrong_command_kind_is_rejected()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await ReadSessionStreams(s, 1);
            await Say(s, "1: fd[9]: OK\0");
            await Task.Delay(3000);
        });
        var (session, scans) = await SendThree(fake, "a");
        await using (session)
        {
            var e = await Assert.ThrowsAsync<ClamdException>(async () => await scans[0]);
            Assert.That(e!.Code, Is.EqualTo(ClamdErrors.Protocol));
            Assert.That(e.Message, Does.Contain("does not belong to the command sent"));
        }
    }

    [Test]
    public async Task An_error_mid_session_fails_that_file_and_the_unanswered_ones_are_retryable_not_clean()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await ReadSessionStreams(s, 3);
            await Say(s, "1: stream: OK\0" + "2: INSTREAM size limit exceeded. ERROR\0");
            // clamd closes the connection after a size-limit error; request 3 never gets an answer
        });
        var (session, scans) = await SendThree(fake, "ok", "huge", "pending");
        await using (session)
        {
            Assert.That((await scans[0]).Verdict, Is.EqualTo(ClamdVerdict.Clean));
            var err = await scans[1];
            Assert.That(err.Verdict, Is.EqualTo(ClamdVerdict.Error));
            Assert.That(err.RawReply, Does.Contain("size limit exceeded"));
            var e = await Assert.ThrowsAsync<ClamdException>(async () => await scans[2]);
            Assert.That(e!.Code, Is.EqualTo(ClamdErrors.Protocol));
            Assert.That(e.IsTransient, Is.True);
            Assert.That(e.Message, Does.Contain("closed the session").And.Contain("1 scan(s) unanswered"));
            Assert.That(session.IsFaulted, Is.True);
        }
    }

    [Test]
    public async Task Pool_sends_a_scan_again_on_a_fresh_session_when_the_first_drops()
    {
        var connections = 0;
        await using var fake = new FakeClamd(async s =>
        {
            var n = Interlocked.Increment(ref connections);
            await ReadSessionStreams(s, 1);
            if (n == 1) return; // dropped without an answer
            await Say(s, "1: stream: OK\0");
            await FakeClamd.ReadExactly(s, "zEND\0".Length);
        });
        await using var pool = new ClamdPool([ClamdEndpoint.Parse(fake.Endpoint)], new ClamdPoolOptions { Parallelism = 1, SessionsPerEndpoint = 1, Client = Fast }, TimeProvider.System);
        var opened = 0;
        var (r, _) = await pool.ScanAsync(() => { opened++; return new MemoryStream("data"u8.ToArray()); }, CancellationToken.None);
        Assert.That(r.Verdict, Is.EqualTo(ClamdVerdict.Clean));
        Assert.That(connections, Is.EqualTo(2));
        Assert.That(opened, Is.EqualTo(2), "the stream is sent again in full on the fresh session");
    }

    [Test]
    public async Task Pool_gives_an_error_verdict_when_every_session_drops_but_clamd_answers_ping()
    {
        await using var fake = new FakeClamd(async s =>
        {
            var head = Encoding.ASCII.GetString(await FakeClamd.ReadExactly(s, "zPING\0".Length));
            if (head == "zPING\0") { await Say(s, "PONG\0"); return; }
            await FakeClamd.ReadExactly(s, "SSION\0".Length); // rest of zIDSESSION\0
            await FakeClamd.ReadExactly(s, "zINSTREAM\0".Length);
            // never answers: drops the session
        });
        await using var pool = new ClamdPool([ClamdEndpoint.Parse(fake.Endpoint)], new ClamdPoolOptions { Parallelism = 1, SessionsPerEndpoint = 1, Client = Fast }, TimeProvider.System);
        var (r, _) = await pool.ScanAsync(() => new MemoryStream("data"u8.ToArray()), CancellationToken.None);
        Assert.That(r.Verdict, Is.EqualTo(ClamdVerdict.Error));
        Assert.That(r.RawReply, Does.StartWith("connection closed by clamd without an answer, twice"));
        Assert.That(pool.Health()[0].Healthy, Is.True, "clamd answered PING; only this file failed");
    }

    [Test]
    public async Task Pool_fails_closed_when_the_session_drops_and_clamd_is_gone()
    {
        // A unix socket, not a TCP port: once this "clamd" is gone, no other process can answer at its address.
        using var dir = new TempDir("pipeline-clamd-session-");
        var path = dir.Combine("clamd.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen();
        var endpoint = "unix://" + path;
        var accept = Task.Run(async () =>
        {
            await using var stream = new NetworkStream(await listener.AcceptAsync(), ownsSocket: true);
            await ReadSessionStreams(stream, 1);
            listener.Dispose(); // clamd dies: the session drops and nothing listens any more
            File.Delete(path);
        });
        await using var pool = new ClamdPool([ClamdEndpoint.Parse(endpoint)], new ClamdPoolOptions { Parallelism = 1, SessionsPerEndpoint = 1, Client = Fast }, TimeProvider.System);
        var e = await Assert.ThrowsAsync<ClamdException>(() => pool.ScanAsync(() => new MemoryStream("data"u8.ToArray()), CancellationToken.None));
        await accept;
        Assert.That(e!.Code, Is.EqualTo(ClamdErrors.NoHealthyEndpoint));
        Assert.That(e.Message, Does.Contain("Nothing is accepted unscanned"));
    }

    [Test]
    public async Task A_failing_content_stream_is_the_callers_error_and_closes_the_session()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await FakeClamd.ReadExactly(s, "zIDSESSION\0zINSTREAM\0".Length);
            await Task.Delay(3000);
        });
        await using var session = await ClamdSession.OpenAsync(ClamdEndpoint.Parse(fake.Endpoint), Fast, CancellationToken.None);
        var e = await Assert.ThrowsAsync<IOException>(() => session.ScanAsync(new BrokenStream(), CancellationToken.None));
        Assert.That(e!.Message, Is.EqualTo("disk went away"));
        Assert.That(session.IsFaulted, Is.True, "half a stream was sent; nothing more may go over this session");
        var next = await Assert.ThrowsAsync<ClamdException>(() => session.ScanAsync(new MemoryStream("x"u8.ToArray()), CancellationToken.None));
        Assert.That(next!.Message, Does.Contain("aborted by the client"));
    }

    [Test]
    public async Task A_full_unix_listen_backlog_means_busy_not_unreachable()
    {
        var path = Path.Combine(Path.GetTempPath(), $"pipeline-backlog-{Guid.NewGuid():N}.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var fillers = new List<Socket>();
        try
        {
            // Fill the backlog until the kernel refuses with EAGAIN (what a busy clamd's full MaxConnectionQueueLength looks like).
            var full = false;
            for (var k = 0; k < 16 && !full; k++)
            {
                var f = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { Blocking = false };
                try { f.Connect(new UnixDomainSocketEndPoint(path)); fillers.Add(f); }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.TryAgain) { f.Dispose(); full = true; }
            }
            Assert.That(full, Is.True, "the test needs a full backlog");
            var client = new ClamdClient(ClamdEndpoint.Parse("unix://" + path), new ClamdClientOptions { ConnectTimeout = TimeSpan.FromSeconds(10), ReadTimeout = TimeSpan.FromSeconds(10) });
            var ping = client.PingAsync(CancellationToken.None);
            await Task.Delay(200);
            Assert.That(ping.IsCompleted, Is.False, ping.Exception?.InnerException?.Message ?? "the connect gave up while the backlog was full");
            // "clamd" catches up: accept everything, answer PING on the connection that asks.
            var server = Task.Run(async () =>
            {
                while (true)
                {
                    var c = await listener.AcceptAsync();
                    _ = Task.Run(async () =>
                    {
                        using (c)
                        {
                            var buf = new byte[6];
                            var got = 0;
                            while (got < 6) { var n = await c.ReceiveAsync(buf.AsMemory(got)); if (n == 0) return; got += n; }
                            if (Encoding.ASCII.GetString(buf) == "zPING\0") await c.SendAsync("PONG\0"u8.ToArray());
                        }
                    });
                }
            });
            foreach (var f in fillers) f.Dispose();
            await ping; // throws CHK-AV-002 Unreachable without the retry on a full backlog
        }
        finally
        {
            foreach (var f in fillers) f.Dispose();
            File.Delete(path);
        }
    }

    private sealed class BrokenStream : Stream
    {
        private int _reads;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_reads++ > 0) throw new IOException("disk went away");
            Array.Fill(buffer, (byte)'a', offset, Math.Min(count, 100));
            return Math.Min(count, 100);
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
