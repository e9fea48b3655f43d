using System.Security.Cryptography;
using System.Text;
using Pipeline.Engine.Api;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// Two tenants on one engine and one running portal (real PostgreSQL, git, clamd, registry):
/// land-a with pipelines A (for the portal) and C (for the CLI), land-b with pipelines B and D.
/// Accepted deliveries A1, C1, B1 and D1, and B's rejected delivery BX (a tag signed by an unknown key). People:
/// Anja (systempfleger), Alma (verfahrensverantwortlich) and Arne (auditor) of land-a; Bert
/// (systempfleger, verfahrensverantwortlich, sicherheitsteam) and Bea (verfahrensverantwortlich)
/// of land-b; Olga, an operator-wide auditor (<c>tenants: ["*"]</c>).
/// </summary>
internal static class TenantScopeSetup
{
    public const string Anja = "Anja Systempflegerin", Alma = "Alma Verantwortlich", Arne = "Arne Auditor", Bert = "Bert Allesdarf", Bea = "Bea Verantwortlich",
        Olga = "Olga Betreiberin";

    internal sealed record Running(PortalSetup.Running Portal, string A, string B, string C, Guid A1, Guid B1, Guid BX, Guid C1, Guid D1, string DigestA, string DigestC) : IAsyncDisposable
    {
        public IReadOnlyDictionary<string, string> Tokens => Portal.Tokens;

        public ValueTask DisposeAsync() => Portal.DisposeAsync();
    }

    public static async Task<Running> StartAsync(DeliveryHarness harness)
    {
        var a = harness.NewScenario();
        var b = harness.NewScenario();
        var c = harness.NewScenario();
        var d = harness.NewScenario();
        foreach (var s in new[] { a, b, c, d })
        {
            s.WriteDefinition();
            File.AppendAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), "\nschutzbedarf: normal\n");
            if (s != a) File.Copy(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), Path.Combine(a.Root, "pipelines", s.Name + ".yaml"));
        }

        var keyFile = Path.Combine(a.Root, "engine-signing.pem");
        using (var key = EngineSigningKey.Generate()) key.WritePrivatePem(keyFile);
        static string Hash(string t) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(t)));
        var tokens = new[] { Anja, Alma, Arne, Bert, Bea, Olga }.ToDictionary(p => p, _ => Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
        var auditor = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        File.WriteAllText(Path.Combine(a.Root, "auditors.sha256"), $"{Hash(auditor)} audit@example tenants=*\n");
        string Person(string name, string tenants, string roles) =>
            $"  - name: {name}\n    tenants: [{tenants}]\n    roles: [{roles}]\n    tokenSha256: {Hash(tokens[name])}\n";
        File.WriteAllText(Path.Combine(a.Root, "people.yaml"), "people:\n"
            + Person(Anja, "land-a", "systempfleger") + Person(Alma, "land-a", "verfahrensverantwortlich") + Person(Arne, "land-a", "auditor")
            + Person(Bert, "land-b", "systempfleger, verfahrensverantwortlich, sicherheitsteam") + Person(Bea, "land-b", "verfahrensverantwortlich")
            + Person(Olga, "\"*\"", "auditor"));
        File.AppendAllText(a.ConfigPath, $"""

            attestation:
              signingKeyFile: engine-signing.pem
            ledger:
              origin: tenants.example/ledger
            audit:
              apiTokensFile: auditors.sha256
            people:
              file: people.yaml
            stages:
              - name: Abnahme
                approval: {"{"} approvers: 1 {"}"}
              - name: Produktion
                approval: {"{"} approvers: 2 {"}"}
            tenants:
              - id: land-a
                name: Landesamt A
                pipelines: [{a.Name}, {c.Name}]
              - id: land-b
                name: Landesamt B
                pipelines: [{b.Name}, {d.Name}]
            """);

        // Every pipeline runs on the one engine (a's configuration).
        async Task<Pipeline.Engine.Runs.DeliveryReport> Deliver(Scenario s, string version, SshKey? key = null)
        {
            s.WriteGoodDelivery(version);
            s.Publish("v" + version, key);
            return (await (s with { ConfigPath = a.ConfigPath }).RunAsync()).Deliveries.Single();
        }

        var a1 = await Deliver(a, "1.0.0");
        var c1 = await Deliver(c, "1.0.0");
        var b1 = await Deliver(b, "1.0.0");
        var d1 = await Deliver(d, "1.0.0");
        var bx = await Deliver(b, "1.0.1", SupplierRepo.NewKey(Path.Combine(b.Root, "stranger"), "stranger"));
        foreach (var r in new[] { a1, c1, b1, d1 }) Assert.That(r.Status, Is.EqualTo(DeliveryStatus.Accepted), r.Reason);
        Assert.That(bx.Status, Is.EqualTo(DeliveryStatus.Rejected), "BX is signed by a key that is not certified");

        var sink = new CapturingSink();
        var engine = await PipelineEngine.StartAsync(a.ConfigPath, TimeProvider.System, sink.Logger(), default);
        var server = await PortalServer.StartAsync(engine, "http://127.0.0.1:0", allowRemote: false, default);
        static string Digest(Pipeline.Engine.Runs.DeliveryReport r) => r.Images.Single()[(r.Images.Single().IndexOf('@') + 1)..];
        var portal = new PortalSetup.Running(a, engine, server, new Uri(server.Addresses.Single()), tokens, a1.DeliveryId, Digest(a1), auditor, sink);
        return new Running(portal, a.Name, b.Name, c.Name, a1.DeliveryId, b1.DeliveryId, bx.DeliveryId, c1.DeliveryId, d1.DeliveryId, Digest(a1), Digest(c1));
    }
}
