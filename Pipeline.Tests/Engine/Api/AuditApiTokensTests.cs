using System.Security.Cryptography;
using System.Text;
using Pipeline.Engine;
using Pipeline.Engine.Api;

namespace Pipeline.Tests.Engine.Api;

public class AuditApiTokensTests
{
    private static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    [Test]
    public void A_listed_token_matches_with_its_label_and_nothing_else_does()
    {
        var tokens = AuditApiTokens.Parse($"# auditors\n{Hash("s3cret")} alice\nsha256:{Hash("other").ToUpperInvariant()}\n\n", "tokens");
        Assert.That(tokens.Count, Is.EqualTo(2));
        Assert.That(tokens.Match("s3cret"), Is.EqualTo("alice"));
        Assert.That(tokens.Match("other"), Is.EqualTo("line 3"));
        Assert.That(tokens.Match("S3cret"), Is.Null);
        Assert.That(tokens.Match(""), Is.Null);
        Assert.That(tokens.Match(null), Is.Null);
        Assert.That(tokens.Match(Hash("s3cret")), Is.Null, "the hash itself is not a token");
    }

    [Test]
    public void A_plain_token_in_the_file_is_refused_with_the_line_and_how_to_hash_it()
    {
        var e = Assert.Throws<PipelineException>(() => AuditApiTokens.Parse("my-plain-token\n", "auditors.txt"))!;
        Assert.That(e.Code, Is.EqualTo("API-TOKENS-FILE"));
        Assert.That(e.Message, Does.Contain("auditors.txt line 1").And.Contain("sha256sum"));
    }

    [Test]
    public void An_empty_file_is_refused_because_no_auditor_could_sign_in()
    {
        var e = Assert.Throws<PipelineException>(() => AuditApiTokens.Parse("# nobody yet\n", "t"))!;
        Assert.That((e.Code, e.Message), Is.EqualTo(("API-TOKENS-FILE", "t lists no token hash: no auditor could sign in")));
    }

    [TestCase("Bearer abc", "abc")]
    [TestCase("bearer  abc ", "abc")]
    [TestCase("Basic YWxpY2U6czNjcmV0", "s3cret")]
    [TestCase("Basic !!notbase64", null)]
    [TestCase("Basic bm9jb2xvbg==", null)]
    [TestCase("Token abc", null)]
    [TestCase("", null)]
    public void The_token_is_read_from_bearer_or_basic_headers_only(string header, string? expected) =>
        Assert.That(AuditApiTokens.FromAuthorizationHeader(header), Is.EqualTo(expected));
}

public class AuditApiBindTests
{
    [TestCase("http://127.0.0.1:8099")]
    [TestCase("http://localhost:8099")]
    [TestCase("http://[::1]:8099")]
    [TestCase("http://127.0.0.1:0;http://[::1]:0")]
    public void Loopback_urls_are_accepted(string urls) =>
        Assert.That(AuditApiHost.CheckBind(urls, allowRemote: false), Has.Count.EqualTo(urls.Split(';').Length));

    [TestCase("http://0.0.0.0:8099")]
    [TestCase("http://*:8099")]
    [TestCase("http://+:8099")]
    [TestCase("http://192.0.2.10:8099")]
    [TestCase("http://audit.example:8099")]
    [TestCase("http://127.0.0.1:8099;http://[::]:8099")]
    public void A_non_loopback_bind_is_refused_unless_allowed(string urls)
    {
        var e = Assert.Throws<PipelineException>(() => AuditApiHost.CheckBind(urls, allowRemote: false))!;
        Assert.That(e.Code, Is.EqualTo("API-REMOTE-BIND"));
        Assert.That(e.Message, Does.Contain("--allow-remote").And.Contain("loopback"));
        Assert.That(AuditApiHost.CheckBind(urls, allowRemote: true), Is.Not.Empty);
    }

    [TestCase("ftp://127.0.0.1:21")]
    [TestCase("http://127.0.0.1:8099/audit")]
    [TestCase("http://user:pw@127.0.0.1:8099")]
    [TestCase("nonsense")]
    [TestCase(" ; ")]
    public void Malformed_urls_are_refused(string urls) =>
        Assert.That(Assert.Throws<PipelineException>(() => AuditApiHost.CheckBind(urls, allowRemote: true))!.Code, Is.EqualTo("API-BAD-URL"));
}
