using System.Net;
using System.Net.Sockets;

namespace Pipeline.Tests.Support;

/// <summary>
/// A loopback HTTP proxy in front of the real registry that answers 503 to the requests
/// <see cref="Fail"/> selects: a registry that fails in the middle of a copy, deterministically.
/// Every other request is forwarded unchanged (the Host header stays the proxy's, so the
/// registry's upload locations point back through the proxy).
/// </summary>
public sealed class FaultyRegistryProxy : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HttpClient _client = new(new HttpClientHandler { AllowAutoRedirect = false });
    private readonly string _upstream;
    private readonly Task _loop;
    private int _failed, _forwarded;

    public FaultyRegistryProxy(string upstream)
    {
        _upstream = upstream;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        Port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }
    public string Host => $"127.0.0.1:{Port}";

    /// <summary>Requests (method, path) answered with 503; null: forward everything.</summary>
    public Func<string, string, bool>? Fail { get; set; }

    public int Failed => Volatile.Read(ref _failed);

    /// <summary>Forwarded requests of <c>method</c> whose path contains <c>part</c>, e.g. blob uploads that reached the registry.</summary>
    public List<(string Method, string Path)> Forwarded { get; } = [];

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var path = req.Url!.AbsolutePath;
        try
        {
            if (Fail?.Invoke(req.HttpMethod, path) == true)
            {
                Interlocked.Increment(ref _failed);
                ctx.Response.StatusCode = 503;
                ctx.Response.ContentType = "application/json";
                await ctx.Response.OutputStream.WriteAsync("{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected outage\"}]}"u8.ToArray());
                ctx.Response.Close();
                return;
            }

            using var msg = new HttpRequestMessage(new HttpMethod(req.HttpMethod), $"http://{_upstream}{req.RawUrl}");
            if (req.HasEntityBody)
            {
                using var body = new MemoryStream();
                await req.InputStream.CopyToAsync(body);
                msg.Content = new ByteArrayContent(body.ToArray());
                if (req.ContentType is { } ct) msg.Content.Headers.TryAddWithoutValidation("Content-Type", ct);
                if (req.Headers["Content-Range"] is { } cr) msg.Content.Headers.TryAddWithoutValidation("Content-Range", cr);
            }

            foreach (var key in req.Headers.AllKeys)
            {
                if (key is null or "Host" or "Content-Length" or "Content-Type" or "Content-Range" or "Connection" or "Transfer-Encoding" or "Expect") continue;
                msg.Headers.TryAddWithoutValidation(key, req.Headers[key]);
            }

            msg.Headers.Host = Host;
            using var resp = await _client.SendAsync(msg, HttpCompletionOption.ResponseHeadersRead);
            lock (Forwarded) Forwarded.Add((req.HttpMethod, path));
            Interlocked.Increment(ref _forwarded);
            ctx.Response.StatusCode = (int)resp.StatusCode;
            foreach (var (k, v) in resp.Headers.Concat(resp.Content.Headers))
            {
                if (k is "Transfer-Encoding" or "Content-Length" or "Connection" or "Keep-Alive") continue;
                try
                {
                    ctx.Response.Headers[k] = string.Join(",", v);
                }
                catch (ArgumentException)
                {
                    // A header HttpListener sets itself.
                }
            }

            var bytes = await resp.Content.ReadAsByteArrayAsync();
            ctx.Response.ContentLength64 = bytes.Length;
            if (bytes.Length > 0 && req.HttpMethod != "HEAD") await ctx.Response.OutputStream.WriteAsync(bytes);
            ctx.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or IOException or HttpRequestException or ObjectDisposedException)
        {
            try
            {
                ctx.Response.Abort();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Close();
        await _loop.ConfigureAwait(false);
        _client.Dispose();
    }
}
