using System.Text;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Scanning;

public class ClamdPoolTests
{
    private readonly List<ClosedPort> _closed = [];

    /// <summary>An endpoint that refuses connections until the test ends (the port stays ours, see <see cref="ClosedPort"/>).</summary>
    private string DeadEndpoint()
    {
        var port = new ClosedPort();
        lock (_closed) _closed.Add(port);
        return port.Endpoint;
    }

    [TearDown]
    public void ReleasePorts()
    {
        lock (_closed)
        {
            foreach (var p in _closed) p.Dispose();
            _closed.Clear();
        }
    }

    private static FakeClamd AlwaysOk() => new(async s =>
    {
        var buf = new byte[70000];
        // read command + chunks until the zero-length chunk, then answer OK
        await FakeClamd.ReadExactly(s, "zINSTREAM\0".Length);
        while (true)
        {
            var len = await FakeClamd.ReadExactly(s, 4);
            var n = (len[0] << 24) | (len[1] << 16) | (len[2] << 8) | len[3];
            if (n == 0) break;
            await s.ReadExactlyAsync(buf.AsMemory(0, n));
        }
        await s.WriteAsync(Encoding.ASCII.GetBytes("stream: OK\0"));
    });

    [Test]
    public async Task A_dead_endpoint_is_taken_out_and_the_stream_goes_to_the_next()
    {
        await using var ok = AlwaysOk();
        var time = new ManualTime(DateTimeOffset.Parse("2026-03-01T00:00:00Z"));
        var dead = DeadEndpoint();
        using var pool = new ClamdPool([ClamdEndpoint.Parse(dead), ClamdEndpoint.Parse(ok.Endpoint)], new ClamdPoolOptions { Parallelism = 2, RetryAfter = TimeSpan.FromMinutes(1), UseSessions = false }, time);
        var opened = 0;
        var (result, endpoint) = await pool.ScanAsync(() => { opened++; return new MemoryStream("data"u8.ToArray()); }, CancellationToken.None);

        Assert.That(result.Verdict, Is.EqualTo(ClamdVerdict.Clean));
        Assert.That(endpoint.ToString(), Is.EqualTo(ok.Endpoint));
        var health = pool.Health();
        Assert.That(health[0].Healthy, Is.False);
        Assert.That(health[0].LastError, Does.Contain("Cannot connect"));
        Assert.That(health[0].RetryAt, Is.EqualTo(time.GetUtcNow().AddMinutes(1)));
        Assert.That(health[1].Healthy, Is.True);

        // later scans skip the dead one; after RetryAfter it is tried again
        await pool.ScanAsync(() => new MemoryStream("x"u8.ToArray()), CancellationToken.None);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.That(pool.Health()[0].Healthy, Is.True);
    }

    [Test]
    public async Task With_no_healthy_endpoint_the_scan_fails_closed()
    {
        using var pool = new ClamdPool([ClamdEndpoint.Parse(DeadEndpoint()), ClamdEndpoint.Parse(DeadEndpoint())], new ClamdPoolOptions(), TimeProvider.System);
        var e = await Assert.ThrowsAsync<ClamdException>(() => pool.ScanAsync(() => new MemoryStream("data"u8.ToArray()), CancellationToken.None));
        Assert.That(e!.Code, Is.EqualTo(ClamdErrors.NoHealthyEndpoint));
        Assert.That(e.Message, Does.Contain("No healthy clamd endpoint").And.Contain("Nothing is accepted unscanned"));
    }

    [TestCase("fd[12]: OK", ClamdVerdict.Clean, null)]
    [TestCase("fd[12]: Pipeline.Test.EICAR.UNOFFICIAL FOUND", ClamdVerdict.Infected, "Pipeline.Test.EICAR.UNOFFICIAL")]
    [TestCase("fd[12]: lstat() failed ERROR", ClamdVerdict.Error, null)]
    [TestCase("fd[]: OK", ClamdVerdict.Error, null)]
    [TestCase("12: OK", ClamdVerdict.Error, null)]
    public void Fildes_replies_are_parsed_as_strictly_as_stream_replies(string reply, ClamdVerdict verdict, string? signature)
    {
        var r = ClamdClient.ParseScanReply(reply);
        Assert.That((r.Verdict, r.Signature), Is.EqualTo((verdict, signature)));
    }

    [Test]
    public async Task Fildes_is_refused_for_tcp_endpoints()
    {
        var client = new ClamdClient(ClamdEndpoint.Parse("tcp://127.0.0.1:1"), new ClamdClientOptions());
        using var h = File.OpenHandle("/bin/true");
        var e = await Assert.ThrowsAsync<ClamdException>(() => client.ScanFileDescriptorAsync(h, CancellationToken.None));
        Assert.That(e!.Code, Is.EqualTo(ClamdErrors.BadEndpoint));
    }

    [Test]
    public async Task Stats_and_versioncommands_are_parsed()
    {
        await using var fake = new FakeClamd(async s =>
        {
            var cmd = new byte[64];
            var n = await s.ReadAsync(cmd);
            var text = Encoding.ASCII.GetString(cmd, 0, n);
            var reply = text.StartsWith("zSTATS")
                ? "POOLS: 1\n\nSTATE: VALID PRIMARY\nTHREADS: live 3  idle 1 max 8 idle-timeout 30\nQUEUE: 2 items\n\tSTATS 0.000016 \n\nMEMSTATS: heap N/A\nEND"
                : "ClamAV 1.4.6| COMMANDS: SCAN QUIT PING INSTREAM STATS";
            await s.WriteAsync(Encoding.ASCII.GetBytes(reply + "\0"));
        });
        var client = new ClamdClient(ClamdEndpoint.Parse(fake.Endpoint), new ClamdClientOptions());
        var stats = await client.StatsAsync(CancellationToken.None);
        Assert.That((stats.LiveThreads, stats.IdleThreads, stats.MaxThreads, stats.QueueItems, stats.State), Is.EqualTo((3, 1, 8, 2, "VALID PRIMARY")));
        Assert.That(await client.VersionCommandsAsync(CancellationToken.None), Does.Contain("INSTREAM").And.Contain("STATS"));
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTime(DateTimeOffset now) : TimeProvider
{
    private DateTimeOffset _now = now;
    public override DateTimeOffset GetUtcNow() => _now;
    public void Advance(TimeSpan by) => _now += by;
}
