using System.Text;
using Pipeline.Checkup.Scanning;
using Pipeline.Tests.Checkup.Scanning;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Checkup.Scanning;

/// <summary>IDSESSION against the real clamd: pipelined FILDES (unix socket) and INSTREAM (TCP), verdicts matched per file.</summary>
[Category("Integration")]
public class ClamdSessionIntegrationTests
{
    private static readonly byte[] Eicar = Encoding.ASCII.GetBytes(@"X5O!P%@AP[4\PZX54(P^)7CC)7}$" + "EICAR-STANDARD-ANTIVIRUS-" + "TEST-FILE!$H+H*");

    private static ClamdEndpoint Socket()
    {
        var v = TestServices.Require("PIPELINE_CLAMD_SOCKET");
        return ClamdEndpoint.Parse(v.Contains("://", StringComparison.Ordinal) ? v : "unix://" + v);
    }

    [Test]
    public async Task Pipelined_fildes_scans_in_one_session_each_get_their_own_verdict()
    {
        using var dir = new TempDir("pipeline-session-");
        var files = Enumerable.Range(0, 24).Select(i =>
        {
            var path = dir.Combine($"f{i}");
            File.WriteAllBytes(path, i % 3 == 1 ? Eicar : Encoding.ASCII.GetBytes($"clean file {i}\n"));
            return (Path: path, Infected: i % 3 == 1);
        }).ToList();
        await using var session = await ClamdSession.OpenAsync(Socket(), new ClamdClientOptions(), CancellationToken.None);
        var handles = files.Select(f => File.OpenHandle(f.Path)).ToList();
        try
        {
            var results = await Task.WhenAll(handles.Select(h => session.ScanFileDescriptorAsync(h, CancellationToken.None)));
            for (var i = 0; i < files.Count; i++)
            {
                Assert.That(results[i].Verdict, Is.EqualTo(files[i].Infected ? ClamdVerdict.Infected : ClamdVerdict.Clean), $"f{i}: {results[i].RawReply}");
                if (files[i].Infected) Assert.That(results[i].Signature, Does.Contain("EICAR"));
                Assert.That(results[i].RawReply, Does.StartWith("fd["));
            }
            Assert.That(session.Sent, Is.EqualTo(24));
            await session.PingAsync(CancellationToken.None);
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
    }

    [Test]
    public async Task An_oversize_stream_mid_session_is_an_error_and_the_other_files_still_get_true_verdicts()
    {
        var endpoint = ClamdEndpoint.Parse(TestServices.Require("PIPELINE_CLAMD_TCP"));
        await using var pool = new ClamdPool([endpoint], new ClamdPoolOptions { Parallelism = 6, SessionsPerEndpoint = 1 }, TimeProvider.System);
        var small = Enumerable.Range(0, 10).Select(i => pool.ScanAsync(() => new MemoryStream(i % 2 == 0 ? Eicar : Encoding.ASCII.GetBytes($"fine {i}")), CancellationToken.None)).ToList();
        var huge = pool.ScanAsync(() => new ZeroStream(64L * 1024 * 1024 + 1), CancellationToken.None);
        var r = await huge;
        Assert.That(r.Result.Verdict, Is.EqualTo(ClamdVerdict.Error), r.Result.RawReply);
        Assert.That(r.Result.RawReply, Does.Contain("size limit exceeded").Or.Contain("connection closed by clamd"));
        for (var i = 0; i < small.Count; i++)
        {
            var (res, _) = await small[i];
            Assert.That(res.Verdict, Is.EqualTo(i % 2 == 0 ? ClamdVerdict.Infected : ClamdVerdict.Clean), $"#{i}: {res.RawReply}");
        }
    }

    [Test]
    public async Task Many_files_through_the_pool_over_sessions_match_per_connection_verdicts()
    {
        using var dir = new TempDir("pipeline-session-");
        var paths = Enumerable.Range(0, 60).Select(i =>
        {
            var p = dir.Combine($"g{i}");
            File.WriteAllBytes(p, i % 7 == 3 ? Eicar : new byte[1000 + i]);
            return p;
        }).ToList();
        await using var sessions = new ClamdPool([Socket()], new ClamdPoolOptions { Parallelism = 8 }, TimeProvider.System);
        var results = await Task.WhenAll(paths.Select(async p =>
        {
            using var h = File.OpenHandle(p);
            return (await sessions.ScanAsync(() => File.OpenRead(p), h, CancellationToken.None)).Result;
        }));
        for (var i = 0; i < paths.Count; i++)
            Assert.That(results[i].Verdict, Is.EqualTo(i % 7 == 3 ? ClamdVerdict.Infected : ClamdVerdict.Clean), $"g{i}: {results[i].RawReply}");
    }
}
