using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Engine.Api;

/// <summary>
/// The auditors allowed to use the HTTP API: the SHA-256 hashes of their tokens, read from the file
/// named by <c>audit.apiTokensFile</c> (one lowercase or uppercase hex hash per line, optionally
/// followed by a label; <c>#</c> starts a comment). Tokens themselves are never stored or logged;
/// a presented token is hashed and compared with every listed hash in constant time.
/// </summary>
public sealed class AuditApiTokens
{
    private IReadOnlyList<(byte[] Hash, string Label)> _hashes;

    private AuditApiTokens(IReadOnlyList<(byte[] Hash, string Label)> hashes) => _hashes = hashes;

    public int Count => _hashes.Count;

    /// <summary>Takes the hashes of a reloaded, validated token file into use (running servers keep this instance).</summary>
    public void Replace(AuditApiTokens reloaded)
    {
        ArgumentNullException.ThrowIfNull(reloaded);
        _hashes = reloaded._hashes;
    }

    /// <exception cref="PipelineException">API-TOKENS-FILE when the file is missing, malformed or lists no hash.</exception>
    public static AuditApiTokens Load(string path)
    {
        if (!File.Exists(path)) throw new PipelineException("API-TOKENS-FILE", $"the auditor token file '{path}' does not exist (audit.apiTokensFile)");
        return Parse(File.ReadAllText(path), path);
    }

    public static AuditApiTokens Parse(string text, string source)
    {
        var list = new List<(byte[], string)>();
        var n = 0;
        foreach (var raw in text.Split('\n'))
        {
            n++;
            var line = raw.Trim();
            var hashAt = line.IndexOf('#');
            if (hashAt >= 0) line = line[..hashAt].Trim();
            if (line.Length == 0) continue;
            var parts = line.Split((char[]?)null, 2, StringSplitOptions.RemoveEmptyEntries);
            var hex = parts[0].StartsWith("sha256:", StringComparison.OrdinalIgnoreCase) ? parts[0][7..] : parts[0];
            if (hex.Length != 64 || !hex.All(Uri.IsHexDigit))
                throw new PipelineException("API-TOKENS-FILE", $"{source} line {n}: expected the SHA-256 of a token as 64 hex digits (e.g. from 'printf %s TOKEN | sha256sum'), not a token or other text");
            list.Add((Convert.FromHexString(hex), parts.Length > 1 ? parts[1].Trim() : $"line {n}"));
        }

        if (list.Count == 0) throw new PipelineException("API-TOKENS-FILE", $"{source} lists no token hash: no auditor could sign in");
        return new AuditApiTokens(list);
    }

    /// <summary>The label of the matching token, or null. Every listed hash is compared, in constant time each.</summary>
    public string? Match(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 4096) return null;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        string? found = null;
        foreach (var (hash, label) in _hashes)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, hash)) found ??= label;
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
