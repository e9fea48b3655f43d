using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Engine.Deploy;
using Pipeline.Engine.Deploy.Verification;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// A stage's application as the probe sees it: Kestrel on 127.0.0.1 port 0 answering
/// <c>/version</c> with the next queued (status, body), then the last one forever.
/// </summary>
public sealed class VersionEndpoint : IAsyncDisposable
{
    private readonly WebApplication _app;
    private (int Status, string Body) _last = (503, "starting");

    private VersionEndpoint(WebApplication app) => _app = app;

    public ConcurrentQueue<(int Status, string Body)> Answers { get; } = new();
    public int Hits;
    public Uri Url { get; private set; } = null!;

    public static async Task<VersionEndpoint> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var endpoint = new VersionEndpoint(app);
        app.MapGet("/version", (HttpContext ctx) =>
        {
            Interlocked.Increment(ref endpoint.Hits);
            if (endpoint.Answers.TryDequeue(out var next)) endpoint._last = next;
            ctx.Response.StatusCode = endpoint._last.Status;
            return ctx.Response.WriteAsync(endpoint._last.Body);
        });
        await app.StartAsync();
        var address = ((IServer)app.Services.GetService(typeof(IServer))!).Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        endpoint.Url = new Uri(new Uri(address), "/version");
        return endpoint;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

[Category("Integration")]
public class HttpProberTests
{
    [Test]
    public async Task The_probe_waits_for_the_rollout_until_the_expected_status_and_version_answer()
    {
        await using var app = await VersionEndpoint.StartAsync();
        app.Answers.Enqueue((503, "starting"));
        app.Answers.Enqueue((200, "{\"version\":\"v0.9.0\"}"));
        app.Answers.Enqueue((200, "{\"version\":\"v1.0.0\"}"));
        var probe = new HttpProbe(app.Url, 200, "\"version\":\"{tag}\"", TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(50));
        var result = await new HttpProber(TimeProvider.System).ProbeAsync(probe, "v1.0.0", CancellationToken.None);
        Assert.That(result.Passed, Is.True, result.Detail);
        Assert.That((result.Attempts, result.LastStatus), Is.EqualTo((3, (int?)200)), "the old version and the 503 did not count");
        Assert.That(result.BodyDigest, Does.StartWith("sha256:"));
    }

    [Test]
    public async Task A_wrong_version_or_status_fails_after_the_timeout_and_says_what_it_saw()
    {
        await using var app = await VersionEndpoint.StartAsync();
        app.Answers.Enqueue((200, "version v0.9.0"));
        var probe = new HttpProbe(app.Url, 200, "{tag}", TimeSpan.FromSeconds(3), TimeSpan.FromMilliseconds(100));
        var result = await new HttpProber(TimeProvider.System).ProbeAsync(probe, "v1.0.0", CancellationToken.None);
        Assert.That(result.Passed, Is.False);
        Assert.That(result.Attempts, Is.GreaterThan(1), "it kept trying until the timeout");
        Assert.That(result.Detail, Does.Contain("without the version 'v1.0.0'").And.Contain("within 3s"));
        Assert.That(result.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromSeconds(2.9)).And.LessThan(TimeSpan.FromSeconds(15)));

        app.Answers.Enqueue((500, "v1.0.0 broken"));
        var status = await new HttpProber(TimeProvider.System).ProbeAsync(probe, "v1.0.0", CancellationToken.None);
        Assert.That(status.Passed, Is.False);
        Assert.That(status.Detail, Does.Contain("answered 500, expected 200"));
    }

    [Test]
    public async Task An_unreachable_application_fails_within_the_timeout()
    {
        using var closed = new ClosedPort();
        var probe = new HttpProbe(new Uri($"http://127.0.0.1:{closed.Port}/version"), 200, "{tag}", TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(100));
        var result = await new HttpProber(TimeProvider.System).ProbeAsync(probe, "v1.0.0", CancellationToken.None);
        Assert.That(result.Passed, Is.False);
        Assert.That((result.LastStatus, result.Detail), Is.EqualTo(((int?)null, result.Detail)));
        Assert.That(result.Detail, Does.Contain("unreachable"));
    }
}
