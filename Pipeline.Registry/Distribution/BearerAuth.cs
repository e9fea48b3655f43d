using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Pipeline.Registry.Distribution;

/// <summary>
/// The Bearer token flow of the distribution spec: on a <c>401</c> with
/// <c>WWW-Authenticate: Bearer realm="…",service="…",scope="…"</c>, GET the realm with the service and
/// every scope seen so far (Basic credentials when configured) and use the returned <c>token</c>
/// (or <c>access_token</c>). The realm must be https, or http on a loopback host; tokens and
/// credentials never appear in messages.
/// </summary>
internal sealed partial class BearerAuth(RegistryEndpoint endpoint)
{
    private const int MaxTokenResponseBytes = 64 * 1024;
    private readonly SortedSet<string> _scopes = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _lock = new(1, 1);
    private volatile string? _token;
    private string? _lastKey;

    public string? Token => _token;

    [GeneratedRegex(@"([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:""((?:[^""\\]|\\.)*)""|([^,\s]*))", RegexOptions.CultureInvariant)]
    private static partial Regex Param();

    internal static Dictionary<string, string> ParseChallenge(string? parameter)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (parameter is null) return map;
        foreach (Match m in Param().Matches(parameter))
            map[m.Groups[1].Value] = m.Groups[2].Success ? Regex.Unescape(m.Groups[2].Value) : m.Groups[3].Value;
        return map;
    }

    /// <summary>Fetches a token for the challenge; false when nothing new can be tried (same scopes, token already refused).</summary>
    /// <param name="sentToken">The token the refused request carried: when another request has meanwhile
    /// fetched a newer one for the same scopes, that one is used (true) instead of being taken for refused.</param>
    public async Task<bool> TryRefreshAsync(RegistryClient client, string? parameter, string? sentToken, CancellationToken ct)
    {
        var challenge = ParseChallenge(parameter);
        if (!challenge.TryGetValue("realm", out var realmText) || !Uri.TryCreate(realmText, UriKind.Absolute, out var realm))
            throw new RegistryException("REG-AUTH-002", "The registry asked for a Bearer token without a usable realm.");
        if (realm.Scheme != Uri.UriSchemeHttps && !(realm.Scheme == Uri.UriSchemeHttp && realm.IsLoopback))
            throw new RegistryException("REG-AUTH-002", $"Refusing the token realm {Redaction.Redact(realm)}: it must be https (or http on loopback).");
        if (realm.UserInfo.Length > 0)
            throw new RegistryException("REG-AUTH-002", "Refusing a token realm with user info.");
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (challenge.TryGetValue("scope", out var scope))
                foreach (var s in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries)) _scopes.Add(s);
            challenge.TryGetValue("service", out var service);
            var query = new List<string>();
            if (service is not null) query.Add("service=" + Uri.EscapeDataString(service));
            query.AddRange(_scopes.Select(s => "scope=" + Uri.EscapeDataString(s)));
            var builder = new UriBuilder(realm) { Query = string.Join("&", (realm.Query.TrimStart('?') is { Length: > 0 } q ? [q] : Array.Empty<string>()).Concat(query)) };
            var key = builder.Uri.ToString();
            if (key == _lastKey && _token is not null)
                return _token != sentToken; // refreshed by a concurrent request: retry with it; else exactly this token was refused
            using var request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
            if (endpoint.Credentials is { } c)
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", RegistryClient.BasicValue(c));
            HttpResponseMessage response;
            try
            {
                response = await client.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException ex)
            {
                throw new RegistryException("REG-AUTH-003", $"Token request to {Redaction.Redact(realm)} failed: {Redaction.RedactText(ex.Message)}", isTransient: true, inner: ex);
            }
            using (response)
            {
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    throw new RegistryException("REG-AUTH-001", $"The token service {Redaction.Redact(realm)} refused the credentials: HTTP {(int)response.StatusCode}; check the registry credentials.", statusCode: (int)response.StatusCode);
                if (!response.IsSuccessStatusCode)
                    throw new RegistryException("REG-AUTH-003", $"The token service {Redaction.Redact(realm)} answered HTTP {(int)response.StatusCode}.",
                        (int)response.StatusCode >= 500, (int)response.StatusCode);
                var bytes = await ReadCappedAsync(response, ct).ConfigureAwait(false);
                string? token = null;
                try
                {
                    using var doc = JsonDocument.Parse(bytes);
                    if (doc.RootElement.ValueKind == JsonValueKind.Object)
                    {
                        if (doc.RootElement.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String) token = t.GetString();
                        if (string.IsNullOrEmpty(token) && doc.RootElement.TryGetProperty("access_token", out var a) && a.ValueKind == JsonValueKind.String) token = a.GetString();
                    }
                }
                catch (JsonException)
                {
                }
                if (string.IsNullOrEmpty(token) || token.Any(ch => ch <= ' ' || ch > '~'))
                    throw new RegistryException("REG-AUTH-003", $"The token service {Redaction.Redact(realm)} sent no usable token.");
                _token = token;
                _lastKey = key;
                return true;
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private static async Task<byte[]> ReadCappedAsync(HttpResponseMessage response, CancellationToken ct)
    {
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxTokenResponseBytes)
                throw new RegistryException("REG-AUTH-003", "The token response is too large.");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}
