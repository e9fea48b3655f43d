using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Api;

/// <summary>
/// The auditors' read-only HTTP API and web page (<c>pipeline audit serve</c>): GET-only JSON
/// endpoints over <see cref="AuditService"/> (trace, verify, query, checkpoint, export), behind
/// bearer/basic tokens whose SHA-256 hashes are listed in <c>audit.apiTokensFile</c>. Each token's
/// scope (<see cref="AuditScope"/>) filters every answer: another tenant's delivery is "not found",
/// queries and exports hold only the auditor's tenants; checkpoints and verify stay global. Loopback only
/// unless the operator explicitly allows a remote bind. Tokens are never logged.
/// </summary>
public static class AuditApiHost
{
    public const string DefaultUrl = "http://127.0.0.1:8099";
    private const int MaxQueryLimit = 1000;
    private const string ScopeItem = "pipeline.audit.scope";

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    private static readonly Dictionary<string, string> Assets = new(StringComparer.Ordinal)
    {
        ["/"] = "index.html",
        ["/index.html"] = "index.html",
        ["/app.js"] = "app.js",
        ["/app.css"] = "app.css",
    };

    /// <summary>
    /// Checks the listen URLs: http(s) with an explicit loopback host (127.0.0.0/8, ::1, localhost)
    /// unless <paramref name="allowRemote"/>. Wildcards and other addresses are refused (API-REMOTE-BIND).
    /// </summary>
    public static IReadOnlyList<Uri> CheckBind(string urls, bool allowRemote)
    {
        var list = new List<Uri>();
        foreach (var part in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var normalized = part.Replace("://*", "://0.0.0.0", StringComparison.Ordinal).Replace("://+", "://0.0.0.0", StringComparison.Ordinal);
            if (!Uri.TryCreate(normalized, UriKind.Absolute, out var u) || (u.Scheme != Uri.UriSchemeHttp && u.Scheme != Uri.UriSchemeHttps) || u.AbsolutePath != "/" || !string.IsNullOrEmpty(u.UserInfo))
                throw new PipelineException("API-BAD-URL", $"'{part}' is not a listen URL like {DefaultUrl}");
            var loopback = u.Host == "localhost" || (IPAddress.TryParse(u.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
            if (!loopback && !allowRemote)
                throw new PipelineException("API-REMOTE-BIND",
                    $"refusing to listen on '{part}': the audit API serves the whole log and listens on loopback only; put it behind a TLS reverse proxy, or pass --allow-remote if you really mean it");
            list.Add(u);
        }

        if (list.Count == 0) throw new PipelineException("API-BAD-URL", $"no listen URL given (e.g. {DefaultUrl})");
        return list;
    }

    /// <summary>Builds the web application (not started). <paramref name="audit"/> should read a ledger that does not sign, so the API never writes.</summary>
    /// <param name="portal">When given, also the portal (<see cref="PortalEndpoints"/>): its page and <c>/api/portal</c>, which authenticates people itself and takes POSTs.</param>
    public static WebApplication Build(AuditService audit, AuditApiTokens tokens, IReadOnlyList<Uri> urls, Serilog.ILogger log, Action<WebApplication>? portal = null) =>
        Build(audit, tokens, urls, log, ApiLimits.Default, portal);

    /// <summary>
    /// As above, with <paramref name="limits"/>: at most <see cref="ApiLimits.Concurrent"/> API requests
    /// run at once (each may hold a database connection), <see cref="ApiLimits.Queued"/> wait; any more
    /// are answered at once with 503 <c>API-BUSY</c> and <c>Retry-After</c>, so a burst of auditors can
    /// never take the database connections the engine needs.
    /// </summary>
    public static WebApplication Build(AuditService audit, AuditApiTokens tokens, IReadOnlyList<Uri> urls, Serilog.ILogger log, ApiLimits limits, Action<WebApplication>? portal = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var gate = new ApiGate(limits);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = typeof(AuditApiHost).Assembly.GetName().Name });
        builder.Logging.ClearProviders();
        Microsoft.Extensions.Hosting.SystemdHostBuilderExtensions.AddSystemd(builder.Services); // Type=notify under systemd; nothing elsewhere
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            k.Limits.MaxRequestBodySize = portal is null ? 0 : 64 * 1024;
        });
        builder.WebHost.UseUrls(urls.Select(u => u.GetLeftPart(UriPartial.Authority)).ToArray());
        var app = builder.Build();

        app.Use(async (ctx, next) =>
        {
            var started = Stopwatch.GetTimestamp();
            var h = ctx.Response.Headers;
            h.CacheControl = "no-store";
            h.XContentTypeOptions = "nosniff";
            h.ContentSecurityPolicy = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
            h.XFrameOptions = "DENY";
            h["Referrer-Policy"] = "no-referrer";
            string? auditor = null;
            try
            {
                if (portal is not null && ctx.Request.Path.StartsWithSegments(PortalEndpoints.Prefix, StringComparison.Ordinal))
                {
                    await next(ctx).ConfigureAwait(false);
                    return;
                }

                if (!HttpMethods.IsGet(ctx.Request.Method) && !HttpMethods.IsHead(ctx.Request.Method))
                {
                    ctx.Response.Headers.Allow = "GET, HEAD";
                    await Error(ctx, 405, "API-METHOD", "the audit API is read-only: GET only").ConfigureAwait(false);
                    return;
                }

                if (ctx.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal))
                {
                    var found = tokens.Find(AuditApiTokens.FromAuthorizationHeader(ctx.Request.Headers.Authorization));
                    auditor = found?.Label;
                    if (found is not null) ctx.Items[ScopeItem] = found.Scope;
                    if (auditor is null)
                    {
                        ctx.Response.Headers.WWWAuthenticate = "Bearer realm=\"pipeline-audit\"";
                        var code = ctx.Request.Headers.Authorization.Count == 0 ? "API-NO-TOKEN" : "API-BAD-TOKEN";
                        await Error(ctx, 401, code, code == "API-NO-TOKEN"
                            ? "an auditor token is required: send 'Authorization: Bearer TOKEN'"
                            : "the token is not one of the auditor tokens configured in audit.apiTokensFile").ConfigureAwait(false);
                        return;
                    }
                }

                if (ctx.Request.Path.StartsWithSegments("/api", StringComparison.Ordinal))
                {
                    using var permit = await gate.TryEnterAsync(ctx.RequestAborted).ConfigureAwait(false);
                    if (permit is null)
                    {
                        ctx.Response.Headers.RetryAfter = limits.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                        await Error(ctx, 503, "API-BUSY", $"too many audit requests at once (at most {limits.Concurrent} run and {limits.Queued} wait); retry after {limits.RetryAfterSeconds} s").ConfigureAwait(false);
                        return;
                    }

                    await next(ctx).ConfigureAwait(false);
                }
                else
                {
                    await next(ctx).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !ctx.RequestAborted.IsCancellationRequested)
            {
                // Whatever escaped an endpoint: a JSON error with a code, never an empty 500 logged as 200.
                var (status, code) = e is Npgsql.NpgsqlException or TimeoutException ? (503, "API-UNAVAILABLE") : (500, "API-INTERNAL");
                log.Error("Audit API {Path} failed: {Type}: {Error}", ctx.Request.Path.Value, e.GetType().Name, e.Message);
                if (!ctx.Response.HasStarted)
                {
                    if (status == 503) ctx.Response.Headers.RetryAfter = limits.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                    await Error(ctx, status, code, status == 503 ? "the ledger could not be read now; retry later" : "the request failed; see the engine log").ConfigureAwait(false);
                }
                else
                {
                    ctx.Abort();
                }
            }
            finally
            {
                // Method, path and status only: never headers (tokens) or query strings.
                log.Information("Audit API {Method} {Path} {Status} in {Ms} ms (auditor {Auditor})", ctx.Request.Method, ctx.Request.Path.Value, ctx.Response.StatusCode,
                    (int)Stopwatch.GetElapsedTime(started).TotalMilliseconds, auditor ?? "-");
            }
        });

        foreach (var (path, name) in Assets)
        {
            app.MapGet(path, (HttpContext ctx) => Asset(ctx, name));
        }

        app.MapGet("/api/trace/{**what}", (string what, HttpContext ctx) => Guarded(ctx, log, async ct =>
        {
            var q = Uri.UnescapeDataString(what);
            var result = await audit.TraceAsync(q, Scope(ctx), ct).ConfigureAwait(false);
            if (result.Deliveries.Count == 0) throw new PipelineException("AUDIT-NOT-FOUND", $"nothing in the log matches '{q}'");
            return result;
        }));
        app.MapGet("/api/verify", (HttpContext ctx) => Guarded(ctx, log, async ct =>
        {
            string? since = ctx.Request.Query["sinceCheckpoint"];
            if (since is { Length: > 0 } && !since.Contains('\n'))
            {
                try
                {
                    since = System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(since.Replace('-', '+').Replace('_', '/').PadRight((since.Length + 3) / 4 * 4, '=')));
                }
                catch (FormatException)
                {
                    throw new PipelineException("API-BAD-QUERY", "sinceCheckpoint must be a checkpoint note (URL-encoded text or base64url)");
                }
            }

            return await audit.VerifyLogAsync(string.IsNullOrEmpty(since) ? null : since, Scope(ctx), ct).ConfigureAwait(false);
        }));
        app.MapGet("/api/query", (HttpContext ctx) => Guarded(ctx, log, async ct =>
            await audit.QueryAsync(ParseQuery(ctx.Request.Query), Scope(ctx), ct).ConfigureAwait(false)));
        app.MapGet("/api/checkpoint", (HttpContext ctx) => Guarded(ctx, log, async ct => await audit.LatestCheckpointAsync(ct).ConfigureAwait(false)));
        app.MapGet("/api/export/{**image}", async (string image, HttpContext ctx) =>
        {
            try
            {
                var bundle = await audit.ExportAsync(Uri.UnescapeDataString(image), Scope(ctx), ctx.RequestAborted).ConfigureAwait(false);
                ctx.Response.ContentType = "application/json";
                ctx.Response.Headers.ContentDisposition = $"attachment; filename=\"audit-{bundle.Subject.Replace(':', '-')}.json\"";
                await ctx.Response.Body.WriteAsync(bundle.ToJsonBytes(), ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (PipelineException e)
            {
                await Error(ctx, StatusFor(e.Code), e.Code, e.Message).ConfigureAwait(false);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or InvalidOperationException)
            {
                log.Error("Audit API {Path} failed: {Type}: {Error}", ctx.Request.Path.Value, e.GetType().Name, e.Message);
                ctx.Response.Headers.RetryAfter = limits.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture);
                await Error(ctx, 503, "API-UNAVAILABLE", "the ledger could not be read now; retry later").ConfigureAwait(false);
            }
        });
        if (portal is not null)
        {
            foreach (var name in new[] { "portal.html", "portal.js", "portal.css" }) app.MapGet("/" + name, (HttpContext ctx) => Asset(ctx, name));
            app.MapGet("/portal", (HttpContext ctx) => Asset(ctx, "portal.html"));
            portal(app);
        }

        app.MapFallback((HttpContext ctx) => Error(ctx, 404, "API-NOT-FOUND", "no such endpoint; see /api/trace, /api/verify, /api/query, /api/checkpoint, /api/export"));
        return app;
    }

    /// <summary>The query string of <c>/api/query</c> as a <see cref="LeafQuery"/>; API-BAD-QUERY names the bad parameter.</summary>
    internal static LeafQuery ParseQuery(IQueryCollection q)
    {
        static string? S(IQueryCollection q, string k) => q[k] is { Count: > 0 } v && !string.IsNullOrWhiteSpace(v[0]) ? v[0]!.Trim() : null;
        DateTimeOffset? Time(string k)
        {
            if (S(q, k) is not { } s) return null;
            if (DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) return t;
            throw new PipelineException("API-BAD-QUERY", $"'{k}' must be an ISO 8601 time such as 2026-01-31T12:00:00Z");
        }

        var known = new HashSet<string>(StringComparer.Ordinal) { "supplier", "pipeline", "verdict", "from", "to", "signer", "stage", "digest", "limit" };
        foreach (var k in q.Keys)
        {
            if (!known.Contains(k)) throw new PipelineException("API-BAD-QUERY", $"unknown query parameter '{k}'; known: {string.Join(", ", known)}");
        }

        var verdict = S(q, "verdict");
        if (verdict is not null and not "passed" and not "failed") throw new PipelineException("API-BAD-QUERY", "'verdict' must be 'passed' or 'failed'");
        var limit = 100;
        if (S(q, "limit") is { } l && (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1 || limit > MaxQueryLimit))
            throw new PipelineException("API-BAD-QUERY", $"'limit' must be a number from 1 to {MaxQueryLimit}");
        return new LeafQuery(Pipeline: S(q, "pipeline"), Supplier: S(q, "supplier"), Stage: S(q, "stage"), Verdict: verdict, KeyId: S(q, "signer"),
            Digest: S(q, "digest"), From: Time("from"), Until: Time("to"), Limit: limit);
    }

    /// <summary>The signed-in auditor's tenants (set by the token check; fail closed when missing).</summary>
    private static AuditScope Scope(HttpContext ctx) =>
        ctx.Items[ScopeItem] as AuditScope ?? throw new InvalidOperationException("no auditor scope on an /api request");

    internal static int StatusFor(string code) => code switch
    {
        "AUDIT-NOT-FOUND" or "LOG-NO-CHECKPOINT" => 404,
        AuditService.ScopeUnverifiable => 409,
        "API-BAD-QUERY" => 400,
        _ when code.StartsWith("LOG-", StringComparison.Ordinal) => 409,
        _ => 500,
    };

    private static async Task Guarded<T>(HttpContext ctx, Serilog.ILogger log, Func<CancellationToken, Task<T>> run)
    {
        T result;
        try
        {
            result = await run(ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (PipelineException e)
        {
            await Error(ctx, StatusFor(e.Code), e.Code, e.Message).ConfigureAwait(false);
            return;
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or InvalidOperationException)
        {
            log.Error("Audit API {Path} failed: {Type}: {Error}", ctx.Request.Path.Value, e.GetType().Name, e.Message);
            ctx.Response.Headers.RetryAfter = "5";
            await Error(ctx, 503, "API-UNAVAILABLE", "the ledger could not be read now; retry later").ConfigureAwait(false);
            return;
        }

        ctx.Response.StatusCode = 200;
        await ctx.Response.WriteAsJsonAsync(result, Json, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static Task Error(HttpContext ctx, int status, string code, string message)
    {
        ctx.Response.StatusCode = status;
        return ctx.Response.WriteAsJsonAsync(new ApiError(code, message), Json, ctx.RequestAborted);
    }

    private static async Task Asset(HttpContext ctx, string name)
    {
        await using var s = typeof(AuditApiHost).Assembly.GetManifestResourceStream("Pipeline.Engine.Api.Web." + name)
                            ?? throw new InvalidOperationException("embedded asset missing: " + name);
        ctx.Response.ContentType = Path.GetExtension(name) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            _ => "application/octet-stream",
        };
        await s.CopyToAsync(ctx.Response.Body, ctx.RequestAborted).ConfigureAwait(false);
    }
}

/// <summary>The body of every API error: a stable code and an actionable message.</summary>
public sealed record ApiError(string Code, string Message);
