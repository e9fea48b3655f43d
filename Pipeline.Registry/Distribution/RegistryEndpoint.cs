using System.Text.RegularExpressions;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

/// <summary>Basic-auth credentials. <see cref="ToString"/> never shows the password.</summary>
public sealed record RegistryCredentials(string Username, string Password)
{
    /// <summary>Reads <c>user:password</c> from a file (one line; a trailing newline is ignored).</summary>
    public static RegistryCredentials FromFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path).TrimEnd('\r', '\n');
        }
        catch (IOException ex)
        {
            throw new RegistryException("REG-AUTH-004", $"Cannot read the registry credentials file '{Safe.Printable(path)}': {ex.GetType().Name}.");
        }
        var colon = text.IndexOf(':');
        if (colon <= 0 || colon == text.Length - 1 || text.Contains('\n'))
            throw new RegistryException("REG-AUTH-004", $"The registry credentials file '{Safe.Printable(path)}' must hold one line 'user:password'.");
        return new RegistryCredentials(text[..colon], text[(colon + 1)..]);
    }

    public override string ToString() => $"{Username}:***";

    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Username = ").Append(Username).Append(", Password = ***");
        return true;
    }
}

/// <summary>
/// Where a registry lives: base URI (<c>http://127.0.0.1:5000</c>) and optional credentials. The
/// URI must be http(s) with no user info, query or fragment. Credentials over plain http are only
/// allowed to a loopback host.
/// </summary>
public sealed record RegistryEndpoint
{
    public RegistryEndpoint(Uri BaseUri, RegistryCredentials? Credentials = null)
    {
        ArgumentNullException.ThrowIfNull(BaseUri);
        if (!BaseUri.IsAbsoluteUri || (BaseUri.Scheme != Uri.UriSchemeHttp && BaseUri.Scheme != Uri.UriSchemeHttps))
            throw new RegistryException("REG-ENDPOINT-001", "The registry URI must be an absolute http or https URI.");
        if (BaseUri.UserInfo.Length > 0)
            throw new RegistryException("REG-ENDPOINT-001", $"The registry URI {Redaction.Redact(BaseUri)} must not carry user info; pass credentials separately.");
        if (BaseUri.Query.Length > 0 || BaseUri.Fragment.Length > 0)
            throw new RegistryException("REG-ENDPOINT-001", $"The registry URI {Redaction.Redact(BaseUri)} must not have a query or fragment.");
        if (Credentials is not null && BaseUri.Scheme == Uri.UriSchemeHttp && !BaseUri.IsLoopback)
            throw new RegistryException("REG-ENDPOINT-002", $"Refusing to send credentials over plain http to {Redaction.Redact(BaseUri)}; use https.");
        this.BaseUri = new Uri(BaseUri.GetLeftPart(UriPartial.Authority) + "/");
        this.Credentials = Credentials;
    }

    public Uri BaseUri { get; }
    public RegistryCredentials? Credentials { get; }

    /// <summary>Parses <c>host:port</c> (plain http) or a full http(s) URI.</summary>
    public static RegistryEndpoint Parse(string value, RegistryCredentials? credentials = null)
    {
        var text = value.Contains("://", StringComparison.Ordinal) ? value : "http://" + value;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
            throw new RegistryException("REG-ENDPOINT-001", $"'{Safe.Printable(value)}' is not a registry address.");
        return new RegistryEndpoint(uri, credentials);
    }

    /// <summary><c>host:port</c> as used in image references.</summary>
    public string Authority => BaseUri.Authority;
}

/// <summary>Validation of repository names and references (OCI distribution spec grammar).</summary>
public static partial class References
{
    [GeneratedRegex(@"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$", RegexOptions.CultureInvariant)]
    private static partial Regex NameRegex();

    [GeneratedRegex(@"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$", RegexOptions.CultureInvariant)]
    private static partial Regex TagRegex();

    /// <summary>Throws <c>REG-NAME-001</c> unless <paramref name="repository"/> is a valid repository name.</summary>
    public static string ValidateRepository(string? repository)
    {
        if (repository is null || repository.Length > 255 || !NameRegex().IsMatch(repository))
            throw new RegistryException("REG-NAME-001",
                $"Repository name '{Safe.Printable(repository)}' is invalid: lowercase path components [a-z0-9] separated by '.', '_', '__' or '-', joined by '/', at most 255 characters.");
        return repository;
    }

    /// <summary>True when <paramref name="tag"/> matches the tag grammar.</summary>
    public static bool IsTag(string? tag) => tag is not null && TagRegex().IsMatch(tag);

    /// <summary>Throws <c>REG-REF-001</c> unless <paramref name="reference"/> is a tag or a digest.</summary>
    public static string ValidateReference(string? reference)
    {
        if (IsTag(reference)) return reference!;
        if (reference is not null && reference.Contains(':') && Digest.TryParse(reference, out _, out _)) return reference;
        throw new RegistryException("REG-REF-001",
            $"Reference '{Safe.Printable(reference)}' is neither a tag ([a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}) nor a sha256/sha512 digest.");
    }
}

/// <summary>Removes user info and query strings from URIs before they go into messages.</summary>
public static partial class Redaction
{
    /// <summary><c>scheme://host:port/path</c>, with <c>?…</c> in place of any query.</summary>
    public static string Redact(Uri? uri)
    {
        if (uri is null) return "(none)";
        if (!uri.IsAbsoluteUri) return Safe.Printable(uri.OriginalString.Split('?')[0]);
        var text = $"{uri.Scheme}://{uri.Authority}{uri.AbsolutePath}";
        return uri.Query.Length > 0 ? text + "?…" : text;
    }

    /// <summary>Redacts anything URL-like (user:pass@) in a free text, e.g. an inner exception message.</summary>
    public static string RedactText(string? text) =>
        text is null ? "" : UserInfo().Replace(Safe.Printable(text), "$1***@");

    [GeneratedRegex(@"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@", RegexOptions.CultureInvariant)]
    private static partial Regex UserInfo();
}
