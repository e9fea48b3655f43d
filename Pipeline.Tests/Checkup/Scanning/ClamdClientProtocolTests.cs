using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Tests.Checkup.Scanning;

/// <summary>Wire-level behaviour against a scripted server (the real clamd is in Integration/Checkup/Scanning).</summary>
public class ClamdClientProtocolTests
{
    private static ClamdClient Client(FakeClamd fake, TimeSpan? read = null) =>
        new(ClamdEndpoint.Parse(fake.Endpoint), new ClamdClientOptions { ReadTimeout = read ?? TimeSpan.FromSeconds(10) });

    [Test]
    public async Task Instream_frames_chunks_of_at_most_64_KiB_and_ends_with_a_zero_chunk()
    {
        var chunks = new List<int>();
        var received = new MemoryStream();
        await using var fake = new FakeClamd(async s =>
        {
            Assert.That(Encoding.ASCII.GetString(await FakeClamd.ReadExactly(s, 10)), Is.EqualTo("zINSTREAM\0"));
            while (true)
            {
                var len = (int)BinaryPrimitives.ReadUInt32BigEndian(await FakeClamd.ReadExactly(s, 4));
                lock (chunks) chunks.Add(len);
                if (len == 0) break;
                received.Write(await FakeClamd.ReadExactly(s, len));
            }
            await s.WriteAsync("stream: OK\0"u8.ToArray());
        });
        var content = new byte[200_000];
        new Random(7).NextBytes(content);
        var result = await Client(fake).ScanAsync(new MemoryStream(content), CancellationToken.None);
        Assert.That(result, Is.EqualTo(new ClamdScanResult(ClamdVerdict.Clean, null, "stream: OK")));
        Assert.That(chunks, Is.EqualTo(new[] { 65536, 65536, 65536, 200_000 - 3 * 65536, 0 }));
        Assert.That(received.ToArray(), Is.EqualTo(content));
    }

    [TestCase("stream: OK", ClamdVerdict.Clean, null)]
    [TestCase("stream: Pipeline.Test.EICAR.UNOFFICIAL FOUND", ClamdVerdict.Infected, "Pipeline.Test.EICAR.UNOFFICIAL")]
    [TestCase("stream: Heuristics.Encrypted.Zip FOUND", ClamdVerdict.Infected, "Heuristics.Encrypted.Zip")]
    [TestCase("INSTREAM size limit exceeded. ERROR", ClamdVerdict.Error, null)]
    [TestCase("stream: Can't allocate memory ERROR", ClamdVerdict.Error, null)]
    [TestCase("stream: FOUND", ClamdVerdict.Error, null)]
    [TestCase("stream: OK but not really", ClamdVerdict.Error, null)]
    [TestCase("OK", ClamdVerdict.Error, null)]
    [TestCase("UNKNOWN COMMAND", ClamdVerdict.Error, null)]
    public void Reply_parsing_is_clean_only_for_stream_OK(string reply, ClamdVerdict verdict, string? signature)
    {
        var r = ClamdClient.ParseScanReply(reply);
        Assert.That((r.Verdict, r.Signature, r.RawReply), Is.EqualTo((verdict, signature, reply)));
    }

    [Test]
    public async Task Server_closing_mid_stream_without_answer_is_an_error_not_clean()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await FakeClamd.ReadExactly(s, 10 + 4 + 1000);
            // close without a word
        });
        var result = await Client(fake).ScanAsync(new ZeroStream(50L * 1024 * 1024), CancellationToken.None);
        Assert.That(result.Verdict, Is.EqualTo(ClamdVerdict.Error));
        Assert.That(result.RawReply, Does.Contain("connection closed by clamd"));
    }

    [Test]
    public async Task Server_answering_error_then_closing_mid_stream_reports_its_answer()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await FakeClamd.ReadExactly(s, 10 + 4 + 65536);
            await s.WriteAsync("INSTREAM size limit exceeded. ERROR\0"u8.ToArray());
            s.Socket().Shutdown(SocketShutdown.Send);
            await Task.Delay(200);
        });
        var result = await Client(fake).ScanAsync(new ZeroStream(50L * 1024 * 1024), CancellationToken.None);
        Assert.That(result.Verdict, Is.EqualTo(ClamdVerdict.Error));
        Assert.That(result.RawReply, Does.Contain("size limit exceeded").Or.Contain("connection closed"));
    }

    [Test]
    public async Task Server_closing_after_upload_without_answer_is_a_protocol_exception()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await FakeClamd.ReadExactly(s, 10 + 4 + 3 + 4);
        });
        var ex = await Assert.ThrowsAsync<ClamdException>(() => Client(fake).ScanAsync(new MemoryStream([1, 2, 3]), CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Protocol));
        Assert.That(ex.Message, Does.Contain("without an answer"));

    }

    [Test]
    public async Task Silent_server_hits_the_read_timeout()
    {
        await using var fake = new FakeClamd(async s => await Task.Delay(5000));
        var ex = await Assert.ThrowsAsync<ClamdException>(() => Client(fake, TimeSpan.FromMilliseconds(200)).PingAsync(CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Timeout));
        Assert.That(ex.IsTransient, Is.True);
    }

    [Test]
    public async Task Wrong_ping_answer_is_a_protocol_error()
    {
        await using var fake = new FakeClamd(async s => { await FakeClamd.ReadExactly(s, 6); await s.WriteAsync("PANG\0"u8.ToArray()); });
        var ex = await Assert.ThrowsAsync<ClamdException>(() => Client(fake).PingAsync(CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Protocol));
        Assert.That(ex.Message, Does.Contain("PANG"));
    }

    [Test]
    public async Task Endless_reply_is_cut_off()
    {
        await using var fake = new FakeClamd(async s =>
        {
            await FakeClamd.ReadExactly(s, 6);
            var junk = Enumerable.Repeat((byte)'A', 4096).ToArray();
            for (var i = 0; i < 100; i++) await s.WriteAsync(junk);
        });
        var ex = await Assert.ThrowsAsync<ClamdException>(() => Client(fake).PingAsync(CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Protocol));
        Assert.That(ex.Message, Does.Contain("longer than"));
    }

    [Test]
    public async Task Cancellation_propagates()
    {
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        var client = new ClamdClient(ClamdEndpoint.Parse("127.0.0.1:9"), new ClamdClientOptions());
        await Assert.CatchAsync<OperationCanceledException>(() => client.ScanAsync(new MemoryStream([1]), cts.Token));
    }

    [TestCase("tcp://127.0.0.1:3310", "127.0.0.1", 3310, null, "tcp://127.0.0.1:3310")]
    [TestCase("127.0.0.1:3310", "127.0.0.1", 3310, null, "tcp://127.0.0.1:3310")]
    [TestCase("clamd.internal:3310", "clamd.internal", 3310, null, "tcp://clamd.internal:3310")]
    [TestCase("tcp://[::1]:3310", "::1", 3310, null, "tcp://[::1]:3310")]
    [TestCase("unix:///run/clamav/clamd.ctl", null, 0, "/run/clamav/clamd.ctl", "unix:///run/clamav/clamd.ctl")]
    public void Endpoint_parses(string text, string? host, int port, string? socket, string display)
    {
        var e = ClamdEndpoint.Parse(text);
        Assert.That((e.Host, e.Port, e.SocketPath, e.ToString()), Is.EqualTo((host, port, socket, display)));
    }

    [TestCase("", TestName = "empty")]
    [TestCase("127.0.0.1", TestName = "no port")]
    [TestCase("127.0.0.1:0", TestName = "port zero")]
    [TestCase("127.0.0.1:65536", TestName = "port too big")]
    [TestCase("127.0.0.1:33a", TestName = "port not numeric")]
    [TestCase("http://127.0.0.1:3310", TestName = "http scheme")]
    [TestCase("unix://relative.sock", TestName = "relative socket")]
    [TestCase("::1:3310", TestName = "unbracketed ipv6")]
    public void Bad_endpoint_is_rejected(string text)
    {
        var ex = Assert.Throws<ClamdException>(() => ClamdEndpoint.Parse(text));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.BadEndpoint));
    }

    [Test]
    public void Report_is_clean_only_when_every_file_is_clean_and_EnsureClean_names_the_problem()
    {
        var clean = new FileScanResult("a", ClamdVerdict.Clean, null, "stream: OK");
        var error = new FileScanResult("b", ClamdVerdict.Error, null, "INSTREAM size limit exceeded. ERROR");
        var bad = new FileScanResult("c", ClamdVerdict.Infected, "X.UNOFFICIAL", "stream: X.UNOFFICIAL FOUND");
        Assert.That(new ScanReport("ClamAV", [clean]).IsClean, Is.True);
        Assert.That(new ScanReport("ClamAV", [clean, error]).IsClean, Is.False);
        var e1 = Assert.Throws<CheckupException>(() => new ScanReport("ClamAV", [clean, error]).EnsureClean());
        Assert.That(e1!.Code, Is.EqualTo(ClamdErrors.ScanError));
        Assert.That(e1.Message, Does.Contain("'b'").And.Contain("size limit"));
        var e2 = Assert.Throws<CheckupException>(() => new ScanReport("ClamAV", [clean, error, bad]).EnsureClean());
        Assert.That(e2!.Code, Is.EqualTo(ClamdErrors.Infected));
        Assert.That(e2.Message, Does.Contain("'c': X.UNOFFICIAL"));
    }
}

internal static class StreamExtensions
{
    public static Socket Socket(this NetworkStream s) => s.Socket;
}

/// <summary>A read-only stream of <c>length</c> zero bytes, produced on the fly (nothing buffered).</summary>
internal sealed class ZeroStream(long length) : Stream
{
    private long _position;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(buffer.Length, length - _position);
        buffer[..n].Clear();
        _position += n;
        return n;
    }
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
