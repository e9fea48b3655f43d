using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

/// <summary>The transport under every registry call: retries, authentication and error bodies.</summary>
public sealed partial class RegistryClient
{
    /// <summary>
    /// Sends a request with retries for transient failures and the auth the registry asks for:
    /// Basic once challenged (credentials only to the registry's own origin), or a Bearer token
    /// fetched from the challenge's realm for the accumulated scopes.
    /// </summary>
    private async Task<HttpResponseMessage> SendAsync(string code, string operation, Func<HttpRequestMessage> create, CancellationToken ct,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, bool retry = true)
    {
        var attempts = retry ? _options.MaxAttempts : 1;
        for (var attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = await SendAuthenticatedAsync(code, operation, create, ct, completion).ConfigureAwait(false);
            }
            catch (RegistryException ex) when (ex.IsTransient && attempt < attempts)
            {
                await DelayAsync(attempt, null, ct).ConfigureAwait(false);
                continue;
            }
            var status = (int)response.StatusCode;
            if (attempt < attempts && (status >= 500 || status is 408 or 429))
            {
                var retryAfter = response.Headers.RetryAfter?.Delta;
                response.Dispose();
                await DelayAsync(attempt, retryAfter, ct).ConfigureAwait(false);
                continue;
            }
            return response;
        }
    }

    private Task DelayAsync(int attempt, TimeSpan? retryAfter, CancellationToken ct)
    {
        var exp = _options.RetryBaseDelay.TotalMilliseconds * Math.Pow(2, attempt - 1);
        var jitter = 0.8 + Random.Shared.NextDouble() * 0.4;
        var ms = Math.Min(Math.Max(exp * jitter, retryAfter?.TotalMilliseconds ?? 0), _options.MaxRetryDelay.TotalMilliseconds);
        return ms <= 0 ? Task.CompletedTask : Task.Delay(TimeSpan.FromMilliseconds(ms), _options.TimeProvider, ct);
    }

    private async Task<HttpResponseMessage> SendAuthenticatedAsync(string code, string operation, Func<HttpRequestMessage> create, CancellationToken ct,
        HttpCompletionOption completion)
    {
        // Whether this request may have gone without Basic credentials: requests sent concurrently before the
        // first challenge was answered each get a 401 and each must be repeated with the credentials.
        var sentWithBasic = _sendBasic;
        var sentToken = _bearer.Token;
        var response = await SendOnceAsync(code, operation, create, ct, completion).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized) return response;
        var challenges = response.Headers.WwwAuthenticate.ToArray();
        var bearer = challenges.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase));
        if (bearer is not null)
        {
            if (!await _bearer.TryRefreshAsync(this, bearer.Parameter, sentToken, ct).ConfigureAwait(false)) return response;
            response.Dispose();
            return await SendOnceAsync(code, operation, create, ct, completion).ConfigureAwait(false);
        }
        if (_endpoint.Credentials is null || sentWithBasic) return response;
        if (!challenges.Any(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))) return response;
        response.Dispose();
        _sendBasic = true;
        return await SendOnceAsync(code, operation, create, ct, completion).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendOnceAsync(string code, string operation, Func<HttpRequestMessage> create, CancellationToken ct, HttpCompletionOption completion)
    {
        using var request = create();
        if (SameOrigin(request.RequestUri!))
        {
            if (_bearer.Token is { } token)
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            else if (_sendBasic && _endpoint.Credentials is { } c)
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", BasicValue(c));
        }
        try
        {
            return await _http.SendAsync(request, completion, ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new RegistryException("REG-NET-001", $"{operation} {Redaction.Redact(request.RequestUri)} timed out.", isTransient: true, inner: ex);
        }
        catch (HttpRequestException ex) when (ex.InnerException is System.Security.Authentication.AuthenticationException)
        {
            throw new RegistryException("REG-TLS-002", $"{operation} {Redaction.Redact(request.RequestUri)}: the TLS handshake failed; the registry's certificate is not trusted or does not name this host (configure the registry CA bundle).", inner: ex);
        }
        catch (HttpRequestException ex)
        {
            throw new RegistryException("REG-NET-001", $"{operation} {Redaction.Redact(request.RequestUri)} failed: {Redaction.RedactText(ex.Message)}", isTransient: true, inner: ex);
        }
        catch (IOException ex)
        {
            // The request body (a local file) failed while it was sent: not the registry's fault, not transient.
            throw new RegistryException("REG-BLOB-009", $"{operation} {Redaction.Redact(request.RequestUri)}: reading the local content failed: {ex.GetType().Name}.", inner: ex);
        }
    }

    internal static string BasicValue(RegistryCredentials c) => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.Username}:{c.Password}"));

    internal HttpClient Http => _http;

    private bool SameOrigin(Uri uri) =>
        uri.Scheme == _endpoint.BaseUri.Scheme && uri.Authority.Equals(_endpoint.BaseUri.Authority, StringComparison.OrdinalIgnoreCase);

    /// <summary>Throws a <see cref="RegistryException"/> built from the registry's error body unless 2xx.</summary>
    private static async Task EnsureSuccessAsync(HttpResponseMessage response, string code, string operation, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode) return;
        var status = (int)response.StatusCode;
        var (registryCode, registryMessage) = await ReadErrorAsync(response, ct).ConfigureAwait(false);
        var transient = status >= 500 || status == 429 || status == 408;
        var url = Redaction.Redact(response.RequestMessage?.RequestUri);
        var detail = registryCode is null ? "" : $" ({registryCode}: {registryMessage})";
        var hint = status switch
        {
            401 => response.Headers.WwwAuthenticate.FirstOrDefault() is { } ch && !ch.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase) && !ch.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)
                ? $"; the registry wants '{Safe.Printable(ch.Scheme)}' auth, which is not supported"
                : "; check the registry credentials",
            403 => "; the credentials lack permission for this repository",
            _ => "",
        };
        var finalCode = status == 401 ? "REG-AUTH-001" : code;
        throw new RegistryException(finalCode, $"{operation} {url} failed: HTTP {status}{detail}{hint}.", transient, status, registryCode);
    }

    private static async Task<(string? Code, string? Message)> ReadErrorAsync(HttpResponseMessage response, CancellationToken ct)
    {
        try
        {
            var bytes = await ReadCappedAsync(response, MaxErrorBodyBytes, "REG-NET-002", ct).ConfigureAwait(false);
            if (bytes is null || bytes.Length == 0) return (null, null);
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
            {
                foreach (var e in errors.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Object) continue;
                    var c = e.TryGetProperty("code", out var cv) && cv.ValueKind == JsonValueKind.String ? cv.GetString() : null;
                    var m = e.TryGetProperty("message", out var mv) && mv.ValueKind == JsonValueKind.String ? mv.GetString() : null;
                    if (c is not null) return (Safe.Printable(c), Redaction.RedactText(m));
                }
            }
        }
        catch (JsonException)
        {
        }
        catch (HttpRequestException)
        {
        }
        return (null, null);
    }

    /// <summary>Reads the body up to <paramref name="max"/> bytes; null when it is larger.</summary>
    private static async Task<byte[]?> ReadCappedAsync(HttpResponseMessage response, int max, string code, CancellationToken ct)
    {
        if (response.Content.Headers.ContentLength is { } len && len > max) return null;
        await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > max) return null;
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}
