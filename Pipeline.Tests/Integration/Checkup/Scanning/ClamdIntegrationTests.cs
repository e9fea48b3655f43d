using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Checkup.Scanning;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Checkup.Scanning;

/// <summary>The clamd client and delivery scanner against the real clamd (TCP and Unix socket).</summary>
[Category("Integration")]
[TestFixture("PIPELINE_CLAMD_TCP")]
[TestFixture("PIPELINE_CLAMD_SOCKET")]
public class ClamdIntegrationTests(string settingKey)
{
    // Built from two halves so this source file never holds the test string in one piece.
    private static readonly byte[] Eicar = Encoding.ASCII.GetBytes(@"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*");

    private ClamdClient _client = null!;

    [SetUp]
    public void SetUp()
    {
        var value = TestServices.Require(settingKey);
        var endpoint = settingKey == "PIPELINE_CLAMD_SOCKET" && !value.Contains("://", StringComparison.Ordinal) ? "unix://" + value : value;
        _client = new ClamdClient(ClamdEndpoint.Parse(endpoint), new ClamdClientOptions());
    }

    [Test]
    public async Task Ping_and_version()
    {
        await _client.PingAsync(CancellationToken.None);
        Assert.That(await _client.VersionAsync(CancellationToken.None), Does.StartWith("ClamAV 1."));
    }

    [Test]
    public async Task Clean_content_is_clean()
    {
        var r = await _client.ScanAsync(new MemoryStream(Encoding.ASCII.GetBytes("just a harmless release note\n")), CancellationToken.None);
        Assert.That(r, Is.EqualTo(new ClamdScanResult(ClamdVerdict.Clean, null, "stream: OK")));
    }

    [Test]
    public async Task Eicar_plain_is_infected()
    {
        var r = await _client.ScanAsync(new MemoryStream(Eicar), CancellationToken.None);
        Assert.That(r.Verdict, Is.EqualTo(ClamdVerdict.Infected), r.RawReply);
        Assert.That(r.Signature, Does.Contain("EICAR"));
    }

    [Test]
    public async Task Eicar_in_a_zip_is_infected()
    {
        var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            await using var e = await zip.CreateEntry("docs/readme.txt").OpenAsync();
            await e.WriteAsync(Eicar);
        }
        ms.Position = 0;
        var r = await _client.ScanAsync(ms, CancellationToken.None);
        Assert.That(r.Verdict, Is.EqualTo(ClamdVerdict.Infected), r.RawReply);
        Assert.That(r.Signature, Does.Contain("EICAR"));
    }

    [Test]
    public async Task Eicar_in_a_tar_gz_is_infected()
    {
        var ms = new MemoryStream();
        await using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        await using (var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: true))
        {
            await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "bin/tool") { DataStream = new MemoryStream(Eicar) });
        }
        ms.Position = 0;
        var r = await _client.ScanAsync(ms, CancellationToken.None);
        Assert.That(r.Verdict, Is.EqualTo(ClamdVerdict.Infected), r.RawReply);
        Assert.That(r.Signature, Does.Contain("EICAR"));
    }

    [Test]
    public async Task Stream_over_StreamMaxLength_is_an_error_never_clean()
    {
        var r = await _client.ScanAsync(new ZeroStream(64L * 1024 * 1024 + 1), CancellationToken.None);
        Assert.That(r.Verdict, Is.EqualTo(ClamdVerdict.Error), r.RawReply);
        TestContext.Out.WriteLine("clamd: " + r.RawReply);
        Assert.That(r.RawReply, Does.Contain("size limit exceeded").Or.Contain("connection closed by clamd"));
    }

    [Test]
    public async Task Delivery_scanner_reports_each_file()
    {
        var root = Path.Combine(Path.GetTempPath(), "chk-av-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(root, "bin"));
        try
        {
            await File.WriteAllTextAsync(Path.Combine(root, "bin", "ok"), "fine");
            await File.WriteAllBytesAsync(Path.Combine(root, "bin", "bad"), Eicar);
            await File.WriteAllTextAsync(Path.Combine(root, "README"), "read me");
            var report = await DeliveryScanner.ScanFilesAsync(root, ["bin/ok", "bin/bad", "README"], _client, 2, CancellationToken.None);
            Assert.That(report.ClamdVersion, Does.StartWith("ClamAV "));
            Assert.That(report.Files.Select(f => (f.Path, f.Verdict)), Is.EqualTo(new[]
            {
                ("README", ClamdVerdict.Clean), ("bin/bad", ClamdVerdict.Infected), ("bin/ok", ClamdVerdict.Clean),
            }));
            Assert.That(report.IsClean, Is.False);
            var ex = Assert.Throws<CheckupException>(report.EnsureClean);
            Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Infected));
            Assert.That(ex.Message, Does.Contain("'bin/bad'").And.Contain("EICAR"));

            var clean = await DeliveryScanner.ScanFilesAsync(root, ["bin/ok", "README"], _client, 2, CancellationToken.None);
            Assert.That(clean.IsClean, Is.True);
        }
        finally
        {
            Directory.Delete(root, true);
        }
    }
}

[Category("Integration")]
public class ClamdUnreachableTests
{
    [Test]
    public async Task Closed_tcp_port_is_unreachable_with_a_clear_code()
    {
        using var closed = new ClosedPort();
        var port = closed.Port;
        var client = new ClamdClient(ClamdEndpoint.Parse($"127.0.0.1:{port}"), new ClamdClientOptions());
        var ex = await Assert.ThrowsAsync<ClamdException>(() => client.ScanAsync(new MemoryStream([1]), CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Unreachable));
        Assert.That(ex.Message, Does.Contain($"tcp://127.0.0.1:{port}").And.Contain("ConnectionRefused"));
        Assert.That(ex.IsTransient, Is.True);
    }

    [Test]
    public async Task Missing_unix_socket_is_unreachable()
    {
        var client = new ClamdClient(ClamdEndpoint.Parse($"unix:///tmp/no-such-clamd-{Guid.NewGuid():N}.sock"), new ClamdClientOptions());
        var ex = await Assert.ThrowsAsync<ClamdException>(() => client.PingAsync(CancellationToken.None));
        Assert.That(ex!.Code, Is.EqualTo(ClamdErrors.Unreachable));
    }
}
