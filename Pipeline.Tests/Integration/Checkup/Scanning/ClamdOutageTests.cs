using System.Diagnostics;
using Pipeline.Checkup.Policies;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Integration.Checkup.Policies;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Checkup.Scanning;

/// <summary>
/// clamd going away in the middle of a delivery. Each test starts its OWN throw-away clamd on a unix
/// socket in its own folder with its own configuration and database (the shared one is never stopped) and kills it.
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class ClamdOutageTests
{
    private TempDir _dir = null!;
    private Process? _clamd;
    private string _endpoint = "";

    [SetUp]
    public async Task StartThrowAwayClamd()
    {
        TestServices.Require("PIPELINE_CLAMD_TCP");
        TestServices.RequireFile("/usr/sbin/clamd", "clamav-daemon");
        _dir = new TempDir("pipeline-clamd-");
        var db = Directory.CreateDirectory(_dir.Combine("db")).FullName;
        Directory.CreateDirectory(_dir.Combine("tmp"));
        await File.WriteAllTextAsync(Path.Combine(db, "throwaway.ndb"), "Pipeline.Test.EICAR:0:*:" + Convert.ToHexStringLower(PolicyScannerIntegrationTests.Eicar) + "\n");
        // A unix socket in our own folder, not a TCP port: nothing else can take its address, before or after clamd dies.
        var socket = _dir.Combine("clamd.sock");
        var conf = _dir.Combine("clamd.conf");
        await File.WriteAllTextAsync(conf, $"""
            Foreground yes
            LogFile {_dir.Combine("clamd.log")}
            DatabaseDirectory {db}
            TemporaryDirectory {_dir.Combine("tmp")}
            LocalSocket {socket}
            MaxThreads 4
            StreamMaxLength 64M
            MaxFileSize 64M
            ScanArchive yes
            AlertEncrypted yes
            AlertExceedsMax yes

            """);
        _clamd = Process.Start(new ProcessStartInfo("/usr/sbin/clamd", ["-c", conf]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false })!;
        _clamd.OutputDataReceived += (_, _) => { };
        _clamd.ErrorDataReceived += (_, _) => { };
        _clamd.BeginOutputReadLine();
        _clamd.BeginErrorReadLine();
        _endpoint = "unix://" + socket;
        var client = new ClamdClient(ClamdEndpoint.Parse(_endpoint), new ClamdClientOptions { ConnectTimeout = TimeSpan.FromSeconds(1) });
        var until = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                await client.PingAsync(CancellationToken.None);
                return;
            }
            catch (ClamdException) when (DateTime.UtcNow < until && !_clamd.HasExited)
            {
                await Task.Delay(200);
            }
        }
    }

    [TearDown]
    public void StopThrowAwayClamd()
    {
        KillClamd();
        _clamd?.Dispose();
        _dir?.Dispose();
    }

    private void KillClamd()
    {
        if (_clamd is { HasExited: false })
        {
            _clamd.Kill(); // only the process this test started, by its handle
            _clamd.WaitForExit(10_000);
        }
    }

    /// <summary>8 MiB of data whose reading kills clamd after the first MiB has gone out.</summary>
    private Stream KillingStream() => new KillAfter(new MemoryStream(new byte[8 << 20]), 1 << 20, KillClamd);

    [Test]
    public async Task Clamd_killed_mid_stream_with_no_other_endpoint_fails_closed()
    {
        using var pool = new ClamdPool([ClamdEndpoint.Parse(_endpoint)], new ClamdPoolOptions(), TimeProvider.System);
        var e = await Assert.ThrowsAsync<ClamdException>(() => pool.ScanAsync(KillingStream, CancellationToken.None));
        Assert.That(e!.Code, Is.EqualTo(ClamdErrors.NoHealthyEndpoint));
        Assert.That(e.Message, Does.Contain(_endpoint).And.Contain("Nothing is accepted unscanned"));
        Assert.That(pool.Health().Single().Healthy, Is.False);
    }

    [Test]
    public async Task Clamd_killed_mid_stream_the_stream_is_sent_again_to_the_next_endpoint()
    {
        var shared = TestServices.Require("PIPELINE_CLAMD_TCP");
        using var pool = new ClamdPool([ClamdEndpoint.Parse(_endpoint), ClamdEndpoint.Parse(shared)], new ClamdPoolOptions(), TimeProvider.System);
        var opened = 0;
        var (result, endpoint) = await pool.ScanAsync(() => ++opened == 1 ? KillingStream() : new MemoryStream(new byte[8 << 20]), CancellationToken.None);
        Assert.That(result.Verdict, Is.EqualTo(ClamdVerdict.Clean));
        Assert.That(opened, Is.EqualTo(2), "streamed again from the start");
        Assert.That(endpoint, Is.EqualTo(ClamdEndpoint.Parse(shared)));
        Assert.That(pool.Health()[0].Healthy, Is.False);
    }

    [Test]
    public async Task Clamd_stopped_mid_delivery_rejects_the_whole_scan()
    {
        for (var i = 0; i < 40; i++)
        {
            var bytes = new byte[256 << 10];
            new Random(i).NextBytes(bytes);
            await File.WriteAllBytesAsync(_dir.Combine($"file{i:00}.bin"), bytes);
        }

        var rels = Enumerable.Range(0, 40).Select(i => $"file{i:00}.bin").ToList();
        using var pool = new ClamdPool([ClamdEndpoint.Parse(_endpoint)], new ClamdPoolOptions { Parallelism = 1 }, TimeProvider.System);
        var policy = new ScanPolicy("t", ScanPolicy.VersionOf("t"u8), null, new Dictionary<string, ScanProfile> { ["normal"] = new("normal") }, []);
        var scanned = 0;
        var scanner = new PolicyScanner(pool, ClamdLimits.Load(_dir.Combine("clamd.conf"), [])!, TimeProvider.System) { FileScanned = _ => { if (Interlocked.Increment(ref scanned) == 3) KillClamd(); } };
        var e = await Assert.ThrowsAsync<ClamdException>(() => scanner.ScanAsync(_dir.Path, rels, policy, "normal", CancellationToken.None));
        Assert.That(e!.Code, Is.EqualTo(ClamdErrors.NoHealthyEndpoint));
        Assert.That(scanned, Is.EqualTo(3), "clamd stopped after three of forty files");
    }

    private sealed class KillAfter(Stream inner, long after, Action kill) : Stream
    {
        private long _read;
        private bool _killed;

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (!_killed && _read >= after)
            {
                _killed = true;
                kill();
            }
            var n = inner.Read(buffer);
            _read += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
