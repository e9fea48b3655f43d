using System.Security.Cryptography;
using System.Text;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Engine.Api;

/// <summary>One auditor token as listed: its label and the tenants it may see.</summary>
public sealed record AuditorToken(string Label, AuditScope Scope);

/// <summary>
/// The auditors allowed to use the HTTP API: the SHA-256 hashes of their tokens, read from the file
/// named by <c>audit.apiTokensFile</c>, one per line: <c>HASH [LABEL] [tenants=ID[,ID…]|tenants=*]</c>
/// (hex, optionally <c>sha256:</c>; <c>#</c> starts a comment). <c>tenants=</c> is the auditor's
/// scope: those tenants only, or <c>*</c> for all. With engine.yaml <c>tenants:</c> every line must
/// say its scope (fail closed: an old line never silently means "all"); without tenants a line
/// without scope means the whole log. Tokens themselves are never stored or logged; a presented
/// token is hashed and compared with every listed hash in constant time.
/// </summary>
public sealed class AuditApiTokens
{
    /// <summary>A line that is not a hash, or a file with no hash at all.</summary>
    public const string FileError = "API-TOKENS-FILE";

    /// <summary>A line without a scope while tenants are configured, or a malformed <c>tenants=</c>.</summary>
    public const string ScopeError = "API-TOKEN-SCOPE";

    /// <summary>A <c>tenants=</c> naming a tenant engine.yaml does not configure.</summary>
    public const string UnknownTenantError = "API-TOKEN-TENANT-UNKNOWN";

    private const string ScopeKey = "tenants=";

    private IReadOnlyList<(byte[] Hash, AuditorToken Auditor)> _hashes;

    private AuditApiTokens(IReadOnlyList<(byte[] Hash, AuditorToken Auditor)> hashes) => _hashes = hashes;

    public int Count => _hashes.Count;

    /// <summary>Takes the hashes of a reloaded, validated token file into use (running servers keep this instance).</summary>
    public void Replace(AuditApiTokens reloaded)
    {
        ArgumentNullException.ThrowIfNull(reloaded);
        _hashes = reloaded._hashes;
    }

    /// <param name="tenants">engine.yaml <c>tenants:</c> (null: none configured).</param>
    /// <exception cref="PipelineException">API-TOKENS-FILE, API-TOKEN-SCOPE or API-TOKEN-TENANT-UNKNOWN (every bad line named).</exception>
    public static AuditApiTokens Load(string path, TenantDirectory? tenants = null)
    {
        if (!File.Exists(path)) throw new PipelineException(FileError, $"the auditor token file '{path}' does not exist (audit.apiTokensFile)");
        return Parse(File.ReadAllText(path), path, tenants);
    }

    /// <summary>Parses a token file; every bad line is reported at once (the exception's code is the first one's).</summary>
    /// <exception cref="PipelineException">API-TOKENS-FILE, API-TOKEN-SCOPE or API-TOKEN-TENANT-UNKNOWN.</exception>
    public static AuditApiTokens Parse(string text, string source, TenantDirectory? tenants = null)
    {
        tenants ??= TenantDirectory.Empty;
        var list = new List<(byte[], AuditorToken)>();
        var errors = new List<(string Code, string Message)>();
        var n = 0;
        foreach (var raw in text.Split('\n'))
        {
            n++;
            var line = raw.Trim();
            var hashAt = line.IndexOf('#');
            if (hashAt >= 0) line = line[..hashAt].Trim();
            if (line.Length == 0) continue;
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var hex = parts[0].StartsWith("sha256:", StringComparison.OrdinalIgnoreCase) ? parts[0][7..] : parts[0];
            if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
            {
                errors.Add((FileError, $"{source} line {n}: expected the SHA-256 of a token as 64 hex digits (e.g. from 'printf %s TOKEN | sha256sum'), not a token or other text"));
                continue;
            }

            var scopes = parts.Skip(1).Where(p => p.StartsWith(ScopeKey, StringComparison.Ordinal)).ToList();
            var label = string.Join(' ', parts.Skip(1).Where(p => !p.StartsWith(ScopeKey, StringComparison.Ordinal)));
            if (ReadScope(scopes, tenants, $"{source} line {n}", errors) is { } scope)
                list.Add((Convert.FromHexString(hex), new AuditorToken(label.Length > 0 ? label : $"line {n}", scope)));
        }

        if (errors.Count > 0)
            throw new PipelineException(errors[0].Code, string.Join("; ", errors.Select((e, i) => i == 0 ? e.Message : $"{e.Code}: {e.Message}")));
        if (list.Count == 0) throw new PipelineException(FileError, $"{source} lists no token hash: no auditor could sign in");
        return new AuditApiTokens(list);
    }

    private static AuditScope? ReadScope(List<string> scopes, TenantDirectory tenants, string where, List<(string, string)> errors)
    {
        const string Syntax = "append 'tenants=ID[,ID…]' (those tenants only) or 'tenants=*' (every tenant)";
        if (scopes.Count == 0)
        {
            if (!tenants.Configured) return AuditScope.Everything;
            errors.Add((ScopeError, $"{where}: the token has no scope, but engine.yaml configures tenants; {Syntax}"));
            return null;
        }

        if (scopes.Count > 1)
        {
            errors.Add((ScopeError, $"{where}: 'tenants=' is given {scopes.Count} times; give it once, e.g. tenants=land-a,land-b"));
            return null;
        }

        var value = scopes[0][ScopeKey.Length..];
        if (value == "*") return AuditScope.Everything;
        var ids = value.Split(',');
        if (ids.Any(i => i.Length == 0 || i == "*"))
        {
            errors.Add((ScopeError, $"{where}: '{scopes[0]}' is not a scope; {Syntax}"));
            return null;
        }

        var unknown = ids.FirstOrDefault(i => tenants.Find(i) is null);
        if (unknown is not null)
        {
            errors.Add((UnknownTenantError, $"{where}: {AuditScope.UnknownMessage(tenants, unknown)}"));
            return null;
        }

        return AuditScope.ForTenants(tenants, ids);
    }

    /// <summary>The label of the matching token, or null. Every listed hash is compared, in constant time each.</summary>
    public string? Match(string? token) => Find(token)?.Label;

    /// <summary>The matching auditor (label and scope), or null. Every listed hash is compared, in constant time each.</summary>
    public AuditorToken? Find(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 4096) return null;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        AuditorToken? found = null;
        foreach (var (hash, auditor) in _hashes)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, hash)) found ??= auditor;
        }

        return found;
    }

    /// <summary>The token in an <c>Authorization</c> header: <c>Bearer TOKEN</c>, or <c>Basic</c> with the token as password (any user name).</summary>
    public static string? FromAuthorizationHeader(string? header)
    {
        if (string.IsNullOrEmpty(header)) return null;
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return header[7..].Trim();
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
                var colon = decoded.IndexOf(':');
                return colon >= 0 ? decoded[(colon + 1)..] : null;
            }
            catch (FormatException)
            {
                return null;
            }
        }

        return null;
    }
}
