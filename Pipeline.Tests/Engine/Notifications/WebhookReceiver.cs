using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Engine.Notifications;

namespace Pipeline.Tests.Engine.Notifications;

/// <summary>
/// A real HTTP receiver on 127.0.0.1 (Kestrel, port 0) that checks every webhook's HMAC as a
/// receiver would, and answers with the next status of <see cref="Answers"/> (200 when empty).
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    public sealed record Hit(string? Event, string? Id, string Body, bool SignatureValid, int Answered);

    private readonly WebApplication _app;

    public ConcurrentQueue<int> Answers { get; } = new();
    public ConcurrentQueue<Hit> Hits { get; } = new();
    public Uri Url { get; private set; } = null!;

    private WebhookReceiver(WebApplication app) => _app = app;

    public static async Task<WebhookReceiver> StartAsync(byte[] secret)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new WebhookReceiver(app);
        app.MapPost("/hook", async (HttpContext ctx) =>
        {
            using var ms = new MemoryStream();
            await ctx.Request.Body.CopyToAsync(ms);
            var body = ms.ToArray();
            var ok = WebhookSignature.Verify(secret, ctx.Request.Headers[WebhookSignature.TimestampHeader], ctx.Request.Headers[WebhookSignature.SignatureHeader], body,
                DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5));
            var status = !ok ? 401 : receiver.Answers.TryDequeue(out var s) ? s : 200;
            receiver.Hits.Enqueue(new Hit(ctx.Request.Headers[WebhookSignature.EventHeader], ctx.Request.Headers[WebhookSignature.IdHeader], System.Text.Encoding.UTF8.GetString(body), ok, status));
            ctx.Response.StatusCode = status;
        });
        await app.StartAsync();
        var address = app.Services.GetService(typeof(IServer)) is IServer srv ? srv.Features.Get<IServerAddressesFeature>()!.Addresses.Single() : throw new InvalidOperationException();
        receiver.Url = new Uri(new Uri(address), "/hook");
        return receiver;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
