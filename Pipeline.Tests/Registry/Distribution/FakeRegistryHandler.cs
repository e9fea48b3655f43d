using System.Net;

namespace Pipeline.Tests.Registry.Distribution;

/// <summary>An in-memory HTTP handler that answers with a scripted function and records requests.</summary>
internal sealed class FakeRegistryHandler(Func<HttpRequestMessage, HttpResponseMessage> respond) : HttpMessageHandler
{
    public List<(HttpMethod Method, Uri Uri, string? Authorization)> Requests { get; } = [];

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        lock (Requests) Requests.Add((request.Method, request.RequestUri!, request.Headers.Authorization?.ToString()));
        if (request.Content is not null) await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var response = respond(request);
        response.RequestMessage = request;
        return response;
    }

    public static HttpResponseMessage Json(HttpStatusCode status, string json)
    {
        var r = new HttpResponseMessage(status) { Content = new StringContent(json) };
        r.Content.Headers.ContentType = new("application/json");
        return r;
    }
}
