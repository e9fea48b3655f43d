using Microsoft.AspNetCore.Http;

namespace Pipeline.Engine.Api;

/// <summary>
/// Cross-site request forgery protection of the portal's state-changing endpoints.
/// <para>
/// Why this is sufficient: a forged request needs the browser to add the credential by itself.
/// The portal has no credential a browser adds by itself: no cookie, no session, and HTTP Basic is
/// not accepted (browsers cache and resend Basic credentials); the person's token lives in the
/// tab's sessionStorage, which another origin cannot read, and the portal's own script sends it in
/// the <c>Authorization</c> header. A cross-origin page cannot set that header without a CORS
/// preflight, which the portal never grants (it sends no <c>Access-Control-*</c> header). So a
/// cross-site form or fetch arrives without a token and is refused. As a second, independent
/// layer every POST must come from the portal's own origin: <c>Sec-Fetch-Site</c>, when present,
/// must be <c>same-origin</c> or <c>none</c> (typed by the user / non-browser), and <c>Origin</c>,
/// when present, must equal the scheme, host and port the request was sent to; the body must be
/// <c>application/json</c> (which no HTML form can send). Clients that send neither header (the
/// CLI, curl, scripts) are not browsers and cannot be forged into sending a token.
/// </para>
/// </summary>
public static class PortalCsrf
{
    public const string Code = "PORTAL-CROSS-ORIGIN";

    /// <summary>Null when the request may change state, else why not.</summary>
    public static string? Check(HttpRequest request)
    {
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site.Length > 0 && site is not "same-origin" and not "none")
            return $"the request came from another site (Sec-Fetch-Site: {site}); portal actions are accepted only from the portal's own page";

        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            // Host and port as the request names them (a TLS proxy in front may change the scheme and
            // omit the port when it passes the original Host header on).
            var host = request.Host;
            if (!Uri.TryCreate(origin, UriKind.Absolute, out var o) || !string.Equals(o.Host, host.Host, StringComparison.OrdinalIgnoreCase) || (host.Port is { } port && o.Port != port))
                return $"the request came from origin '{Trim(origin)}', not from the portal's own origin ({host.Value})";
        }

        var type = request.ContentType ?? "";
        if (!type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            return "portal actions take a JSON body (Content-Type: application/json)";
        return null;
    }

    private static string Trim(string s) => s.Length > 100 ? s[..100] + "…" : s;
}
