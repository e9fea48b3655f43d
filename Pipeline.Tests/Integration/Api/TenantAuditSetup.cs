using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Engine.Api;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// Two tenants on one engine and one ledger (real PostgreSQL, git, clamd, registry): land-a with
/// pipeline A, land-b with pipeline B, one accepted delivery each, both tagged v1.0.0 (so a tag
/// names deliveries of both tenants), and the audit API with a land-a, a land-b and an all-tenant token.
/// </summary>
internal sealed record TwoTenants(Scenario A, Scenario B, PipelineEngine Engine, AuditApiServer Server, Uri BaseUrl, string PublicKey,
    string TokenA, string TokenB, string TokenAll, string ImageA, string ImageB, Guid DeliveryA, Guid DeliveryB,
    IReadOnlyList<string> OnlyA, IReadOnlyList<string> OnlyB) : IAsyncDisposable
{
    public const string TenantA = "land-a";
    public const string TenantB = "land-b";

    public string DigestA => ImageA[(ImageA.IndexOf('@') + 1)..];
    public string DigestB => ImageB[(ImageB.IndexOf('@') + 1)..];

    public static async Task<TwoTenants> StartAsync(DeliveryHarness harness)
    {
        var a = harness.NewScenario();
        var b = harness.NewScenario();
        var keyFile = Path.Combine(a.Root, "engine-signing.pem");
        var pub = Path.Combine(a.Root, "engine.pub.pem");
        using (var key = EngineSigningKey.Generate())
        {
            key.WritePrivatePem(keyFile);
            File.WriteAllText(pub, key.Public.PublicKeyPem + "\n");
        }

        string NewToken() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        static string Hash(string t) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(t)));
        var (tokenA, tokenB, tokenAll) = (NewToken(), NewToken(), NewToken());
        File.WriteAllText(Path.Combine(a.Root, "auditors.sha256"),
            $"# auditors\n{Hash(tokenA)} Prüferin Land A tenants={TenantA}\n{Hash(tokenB)} bob tenants={TenantB}\n{Hash(tokenAll)} rechnungshof tenants=*\n");

        // One engine configuration with both pipelines, each in its own tenant.
        a.WriteDefinition();
        b.WriteDefinition();
        foreach (var s in new[] { a, b }) File.AppendAllText(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), "\nschutzbedarf: normal\n");
        File.Copy(Path.Combine(b.Root, "pipelines", b.Name + ".yaml"), Path.Combine(a.Root, "pipelines", b.Name + ".yaml"));
        File.AppendAllText(a.ConfigPath, $"""

            attestation:
              signingKeyFile: engine-signing.pem
            ledger:
              origin: tenants.example/ledger
            audit:
              apiTokensFile: auditors.sha256
            tenants:
              - id: {TenantA}
                name: Landesamt A
                pipelines: [{a.Name}]
              - id: {TenantB}
                name: Landesamt B
                pipelines: [{b.Name}]

            """);

        a.WriteGoodDelivery("1.0.0");
        a.Publish("v1.0.0");
        var da = (await a.RunAsync()).Deliveries.Single();
        Assert.That(da.Status, Is.EqualTo(DeliveryStatus.Accepted), da.Reason);
        b.WriteGoodDelivery("7.7.7");
        b.Publish("v1.0.0");
        var db = (await (a with { Name = b.Name }).RunAsync()).Deliveries.Single();
        Assert.That(db.Status, Is.EqualTo(DeliveryStatus.Accepted), db.Reason);

        var engine = await PipelineEngine.StartAsync(a.ConfigPath, TimeProvider.System, Serilog.Core.Logger.None, default);
        await engine.Ledger.CheckpointAsync(default);
        var server = await AuditApiServer.StartAsync(engine, "http://127.0.0.1:0", allowRemote: false, default);

        // What only one tenant's signed statements name: pipeline, delivery id, and every digest the other tenant's statements do not share (the base image is shared).
        var facts = new Dictionary<string, HashSet<string>>();
        foreach (var (s, d) in new[] { (a, da), (b, db) })
        {
            var set = new HashSet<string>(StringComparer.Ordinal) { s.Name, d.DeliveryId.ToString("D") };
            foreach (var r in await engine.Audit.QueryAsync(new LeafQuery(Pipeline: s.Name), default))
                set.UnionWith(r.Subjects.Concat(r.Materials).SelectMany(x => x.DigestStrings));
            facts[s.Name] = set;
        }

        var onlyA = facts[a.Name].Except(facts[b.Name]).ToList();
        var onlyB = facts[b.Name].Except(facts[a.Name]).ToList();
        Assert.That(onlyB, Does.Contain(db.Images.Single()[(db.Images.Single().IndexOf('@') + 1)..]), "B's image digest is B's alone (the test can fail)");
        return new TwoTenants(a, b, engine, server, new Uri(server.Addresses.Single()), pub, tokenA, tokenB, tokenAll,
            da.Images.Single(), db.Images.Single(), da.DeliveryId, db.DeliveryId, onlyA, onlyB);
    }

    /// <summary>Every layer of a bundle as text: the JSON, each envelope, each envelope's decoded payload (a string hidden in base64 is found too).</summary>
    public static string AllLayers(byte[] bundle)
    {
        var text = new StringBuilder(Encoding.UTF8.GetString(bundle));
        foreach (var e in JsonNode.Parse(bundle)!["entries"]!.AsArray())
        {
            var envelope = Convert.FromBase64String(e!["envelope"]!.GetValue<string>());
            text.Append('\n').Append(Encoding.UTF8.GetString(envelope));
            text.Append('\n').Append(Encoding.UTF8.GetString(DsseEnvelope.Parse(envelope).Payload));
        }

        return text.ToString();
    }

    /// <summary>Fails naming the first string of <paramref name="forbidden"/> found in <paramref name="text"/> (also without its algorithm prefix).</summary>
    public static void AssertNoneOf(IReadOnlyList<string> forbidden, string text, string what)
    {
        Assert.That(forbidden, Is.Not.Empty);
        foreach (var s in forbidden)
        {
            var bare = s.Contains(':') ? s[(s.IndexOf(':') + 1)..] : s;
            Assert.That(text, Does.Not.Contain(s).And.Not.Contain(bare), $"{what} contains '{s}' of the other tenant");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await Engine.DisposeAsync();
    }
}
