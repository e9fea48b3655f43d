using System.Security.Cryptography;
using System.Text;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;

namespace Pipeline.Tests.Engine.Lifecycle;

public class PeopleDirectoryTests
{
    internal static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    [Test]
    public void A_token_authenticates_its_person_and_nobody_else()
    {
        var errors = new ConfigErrors();
        var people = PeopleDirectory.Parse("people.yaml", $"""
            people:
              - name: Anna Beispiel
                roles: [verfahrensverantwortlich]
                pipelines: [fachverfahren-a]
                tokenSha256: {Hash("anna-token")}
              - name: Sam Pfleger
                roles: [systempfleger, betrieb]
                pipelines: ["*"]
                tokenSha256: sha256:{Hash("sam-token")}
            """, errors);
        Assert.That(errors.All, Is.Empty);
        var anna = people!.Authenticate("anna-token", "cli")!;
        Assert.That(anna.Person!.Name, Is.EqualTo("Anna Beispiel"));
        Assert.That(anna.Channel, Is.EqualTo("cli"));
        Assert.That(anna.Person.MayActOn("fachverfahren-a"), Is.True);
        Assert.That(anna.Person.MayActOn("other"), Is.False);
        Assert.That(people.Authenticate("sam-token", "portal")!.Person!.MayActOn("anything"), Is.True);
        Assert.That(people.Authenticate("anna-token ", "cli"), Is.Null, "a token is compared exactly");
        Assert.That(people.Authenticate(Hash("anna-token"), "cli"), Is.Null, "the hash itself is not a token");
        Assert.That(people.Authenticate("", "cli"), Is.Null);
    }

    [Test]
    public void Every_error_of_the_people_file_is_reported_with_its_line()
    {
        var errors = new ConfigErrors();
        var people = PeopleDirectory.Parse("people.yaml", $"""
            people:
              - name: Anna
                roles: [verfahrensverantwortliche]
                pipelines: [fachverfahren-a]
                tokenSha256: plain-token
              - name: Bert
                roles: [auditor]
                pipelines: [Not_A_Name]
                tokenSha256: {Hash("b")}
                sshKey: ssh-ed25519 AAAAnotbase64
              - name: Bert
                roles: [auditor]
                pipelines: ["*"]
                tokenSha256: {Hash("c")}
            """, errors);
        Assert.That(people, Is.Null);
        var text = errors.All.Select(e => e.ToString()).ToList();
        Assert.That(text, Has.Some.StartsWith("people.yaml:3:").And.Some.Contains("unknown role 'verfahrensverantwortliche'"));
        Assert.That(text, Has.Some.StartsWith("people.yaml:5:").And.Some.Contains("must be the SHA-256 of the person's token as 64 hex digits"));
        Assert.That(text, Has.Some.StartsWith("people.yaml:8:").And.Some.Contains("'Not_A_Name' in 'people[1].pipelines' is not a pipeline name"));
        Assert.That(text, Has.Some.StartsWith("people.yaml:10:").And.Some.Contains("is not a usable SSH public key"));
        Assert.That(text, Has.Some.StartsWith("people.yaml:11:").And.Some.Contains("person 'Bert' is listed twice"));
    }
}
