using System.Net;
using System.Net.Sockets;
using System.Text;
using Pipeline.Engine;
using Pipeline.Engine.Vcs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>The publish push through the git binary: locked down, credential kept off the command line, bounded in time.</summary>
[Category("Integration")]
public class GitPushTests
{
    private static (SupplierMirror Mirror, string TagId) MirrorWithSignedTag(TempDir dir)
    {
        var key = SupplierRepo.NewKey(dir.Combine("keys"));
        var repo = new SupplierRepo(dir.Combine("w"));
        repo.Write("a", "1");
        repo.Commit("first");
        var tagId = repo.SignedTag("v1.0.0", key);
        var mirror = SupplierMirror.Open(dir.Combine("m.git"), new Uri("file://" + repo.WorkTree));
        mirror.Fetch(null, default);
        return (mirror, tagId);
    }

    [Test]
    public void A_hook_in_the_mirror_does_not_run_and_the_tag_arrives()
    {
        using var dir = new TempDir();
        var (mirror, tagId) = MirrorWithSignedTag(dir);
        using var _ = mirror;
        var marker = dir.Combine("hook-ran");
        var hook = Path.Combine(mirror.Path, "hooks", "pre-push");
        Directory.CreateDirectory(Path.GetDirectoryName(hook)!);
        File.WriteAllText(hook, $"#!/bin/sh\ntouch '{marker}'\nexit 1\n");
        File.SetUnixFileMode(hook, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var (url, cred, bare) = SupplierMirrorTests.ServerRepo(dir, "internal/gitpush-" + Guid.NewGuid().ToString("N")[..8]);

        mirror.PushTag("v1.0.0", url, GitCredentials.FromFile(cred), default);

        Assert.That(Shell.Run("git", ["--git-dir", bare, "rev-parse", "refs/tags/v1.0.0"]).Stdout.Trim(), Is.EqualTo(tagId));
        Assert.That(File.Exists(marker), Is.False, "a pre-push hook in the mirror must not run");
    }

    [Test]
    public void A_wrong_password_is_an_outage_of_VCS_B_and_never_prompts()
    {
        using var dir = new TempDir();
        var (mirror, _) = MirrorWithSignedTag(dir);
        using var __ = mirror;
        var (url, cred, bare) = SupplierMirrorTests.ServerRepo(dir, "internal/gitpush-" + Guid.NewGuid().ToString("N")[..8]);
        var user = File.ReadAllText(cred).Split(':')[0];
        File.WriteAllText(cred, $"{user}:not-the-password\n");

        var e = Assert.Throws<PipelineException>(() => mirror.PushTag("v1.0.0", url, GitCredentials.FromFile(cred), default))!;

        Assert.That(e.Code, Is.EqualTo("PUBLISH-PUSH"));
        Assert.That(e.Message, Does.Contain("git push exited with").And.Not.Contain("not-the-password"));
        Assert.That(Shell.Run("git", ["--git-dir", bare, "show-ref"]).Stdout.Trim(), Is.Empty, "nothing was pushed");
    }

    [Test]
    public async Task A_server_that_never_answers_is_stopped_at_the_timeout_and_got_the_credential_only_as_a_header()
    {
        using var dir = new TempDir();
        var (mirror, _) = MirrorWithSignedTag(dir);
        using var __ = mirror;
        var cred = dir.Combine("git.cred");
        File.WriteAllText(cred, "pusher:s3cret-pw\n");
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var request = new StringBuilder();
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var buffer = new byte[4096];
            var stream = client.GetStream();
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                lock (request) request.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        });

        var started = DateTime.UtcNow;
        var e = (await Assert.ThrowsAsync<PipelineException>(() => mirror.PushTagAsync("v1.0.0", new Uri($"http://127.0.0.1:{port}/internal/x.git"),
            GitCredentials.FromFile(cred), default, TimeSpan.FromSeconds(3))))!;

        Assert.That((e.Code, e.Message), Is.EqualTo(("PUBLISH-PUSH", "pushing to the internal repository did not finish within 3 s; git was stopped")));
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(30)));
        listener.Stop();
        await Task.WhenAny(serve, Task.Delay(TimeSpan.FromSeconds(10)));
        string seen;
        lock (request) seen = request.ToString();
        Assert.That(seen, Does.StartWith("GET /internal/x.git/info/refs?service=git-receive-pack"));
        Assert.That(seen, Does.Contain("Authorization: Basic " + Convert.ToBase64String("pusher:s3cret-pw"u8.ToArray())));
    }

    [Test]
    public void A_redirect_is_not_followed_so_the_credential_stays_with_the_configured_server()
    {
        using var dir = new TempDir();
        var (mirror, _) = MirrorWithSignedTag(dir);
        using var __ = mirror;
        using var elsewhere = new FailingHttpServer();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync();
                var stream = client.GetStream();
                var buffer = new byte[4096];
                var head = "";
                int n;
                while (!head.Contains("\r\n\r\n") && (n = await stream.ReadAsync(buffer)) > 0) head += Encoding.ASCII.GetString(buffer, 0, n);
                await stream.WriteAsync(Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{elsewhere.Port}/x.git/info/refs?service=git-receive-pack\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
            }
        });
        var cred = dir.Combine("git.cred");
        File.WriteAllText(cred, "pusher:s3cret-pw\n");

        var e = Assert.Throws<PipelineException>(() => mirror.PushTag("v1.0.0", new Uri($"http://127.0.0.1:{port}/internal/x.git"), GitCredentials.FromFile(cred), default))!;

        Assert.That(e.Code, Is.EqualTo("PUBLISH-PUSH"));
        Assert.That(elsewhere.Requests, Is.Zero, "the redirect target got no request (and so no credential)");
        listener.Stop();
        _ = serve;
    }
}
