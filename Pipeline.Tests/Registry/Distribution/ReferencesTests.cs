using Pipeline.Registry;
using Pipeline.Registry.Distribution;

namespace Pipeline.Tests.Registry.Distribution;

public class ReferencesTests
{
    [TestCase("app")]
    [TestCase("team/app")]
    [TestCase("a.b_c__d-e---f/g0")]
    [TestCase("pipeline-tests/registry-0123456789ab")]
    public void Valid_repository_names(string name) => Assert.That(References.ValidateRepository(name), Is.EqualTo(name));

    [TestCase("App")]
    [TestCase("team//app")]
    [TestCase("/app")]
    [TestCase("app/")]
    [TestCase("app-")]
    [TestCase("a___b")]
    [TestCase("a..b")]
    [TestCase("../etc")]
    [TestCase("")]
    public void Invalid_repository_names(string name)
    {
        var ex = Assert.Throws<RegistryException>(() => References.ValidateRepository(name))!;
        Assert.That(ex.Code, Is.EqualTo("REG-NAME-001"));
        Assert.That(ex.Message, Does.Contain("is invalid"));
    }

    [Test]
    public void Repository_name_length_is_capped() =>
        Assert.Throws<RegistryException>(() => References.ValidateRepository(new string('a', 256)));

    [TestCase("v1.2.3")]
    [TestCase("_latest")]
    [TestCase("sha256-0123")]
    [TestCase("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")]
    public void Valid_references(string reference) => Assert.That(References.ValidateReference(reference), Is.EqualTo(reference));

    [TestCase(".hidden")]
    [TestCase("-x")]
    [TestCase("a/b")]
    [TestCase("sha256:short")]
    [TestCase("")]
    public void Invalid_references(string reference) =>
        Assert.That(Assert.Throws<RegistryException>(() => References.ValidateReference(reference))!.Code, Is.EqualTo("REG-REF-001"));

    [Test]
    public void Tag_is_at_most_128_characters()
    {
        Assert.That(References.IsTag(new string('a', 128)));
        Assert.That(References.IsTag(new string('a', 129)), Is.False);
    }
}

public class EndpointTests
{
    [Test]
    public void Credentials_file_is_read_and_never_printed()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "ci:pa:ss\n");
            var c = RegistryCredentials.FromFile(file);
            Assert.That(c.Username, Is.EqualTo("ci"));
            Assert.That(c.Password, Is.EqualTo("pa:ss"));
            Assert.That(c.ToString(), Does.Not.Contain("pa:ss"));
            var endpoint = new RegistryEndpoint(new Uri("http://localhost:5000"), c);
            Assert.That(endpoint.ToString(), Does.Not.Contain("pa:ss"));
            File.WriteAllText(file, "no-colon\n");
            var ex = Assert.Throws<RegistryException>(() => RegistryCredentials.FromFile(file))!;
            Assert.That(ex.Code, Is.EqualTo("REG-AUTH-004"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public void Endpoint_rejects_userinfo_without_echoing_it()
    {
        var ex = Assert.Throws<RegistryException>(() => _ = new RegistryEndpoint(new Uri("http://bob:hunter2@127.0.0.1:5000")))!;
        Assert.That(ex.Code, Is.EqualTo("REG-ENDPOINT-001"));
        Assert.That(ex.Message, Does.Not.Contain("hunter2"));
        Assert.That(ex.Message, Does.Not.Contain("bob"));
    }

    [Test]
    public void Credentials_over_plain_http_only_to_loopback()
    {
        var ex = Assert.Throws<RegistryException>(() => _ = new RegistryEndpoint(new Uri("http://registry.internal:5000"), new RegistryCredentials("u", "p")))!;
        Assert.That(ex.Code, Is.EqualTo("REG-ENDPOINT-002"));
        Assert.DoesNotThrow(() => _ = new RegistryEndpoint(new Uri("https://registry.internal:5000"), new RegistryCredentials("u", "p")));
    }

    [Test]
    public void Parse_accepts_host_port_and_redaction_hides_query()
    {
        var e = RegistryEndpoint.Parse("127.0.0.1:5000");
        Assert.That(e.BaseUri.ToString(), Is.EqualTo("http://127.0.0.1:5000/"));
        Assert.That(e.Authority, Is.EqualTo("127.0.0.1:5000"));
        Assert.That(Redaction.Redact(new Uri("http://u:p@h:1/v2/x?_state=abc")), Is.EqualTo("http://h:1/v2/x?…"));
    }
}
