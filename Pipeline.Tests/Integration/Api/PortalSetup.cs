using System.Net.Http.Headers;
using System.Net.Http.Json;
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
/// A running portal over a real engine (PostgreSQL, git, clamd, registry) with one accepted
/// delivery (v1.0.0), stages Abnahme (one Verfahrensverantwortliche:r) ► Produktion (two), and
/// people: a Systempfleger, three Verfahrensverantwortliche, an auditor (all on the pipeline)
/// and a person of another pipeline.
/// </summary>
internal static class PortalSetup
{
    public const string Sam = "Sam Systempfleger", Vera = "Vera Verantwortlich", Veit = "Veit Verantwortlich", Vito = "Vito Verantwortlich",
        Ada = "Ada Auditorin", Otto = "Otto Anderswo";

    internal sealed record Running(Scenario Scenario, PipelineEngine Engine, PortalServer Server, Uri BaseUrl, IReadOnlyDictionary<string, string> Tokens, Guid DeliveryId,
        string Digest, string AuditorToken, CapturingSink Log) : IAsyncDisposable
    {
        /// <summary>Vito's own SSH key (in the people file) for signed Freigaben.</summary>
        public SshKey VitoKey { get; init; } = null!;

        public string Pipeline => Scenario.Name;

        public HttpClient Client() => new() { BaseAddress = BaseUrl };

        /// <summary>A request as the portal page sends it: bearer token, JSON body, same origin.</summary>
        public HttpRequestMessage Request(HttpMethod method, string path, string? person, object? body = null, string? origin = "same")
        {
            var req = new HttpRequestMessage(method, path);
            if (person is not null) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Tokens.GetValueOrDefault(person, person));
            if (origin is not null) req.Headers.Add("Origin", origin == "same" ? BaseUrl.GetLeftPart(UriPartial.Authority) : origin);
            if (method == HttpMethod.Post) req.Content = JsonContent.Create(body ?? new { });
            return req;
        }

        public async Task<(int Status, JsonNode? Body)> Send(HttpMethod method, string path, string? person, object? body = null, string? origin = "same")
        {
            using var http = Client();
            using var res = await http.SendAsync(Request(method, path, person, body, origin));
            var text = await res.Content.ReadAsStringAsync();
            return ((int)res.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
        }

        public async Task<int> LedgerCount() => (await Engine.Ledger.ReadAsync(DeliveryId, default)).Count;

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await Engine.DisposeAsync();
        }
    }

    public static async Task<Running> StartAsync(DeliveryHarness harness, string extraConfig = "")
    {
        var s = harness.NewScenario();
        var keyFile = Path.Combine(s.Root, "engine-signing.pem");
        using (var key = EngineSigningKey.Generate()) key.WritePrivatePem(keyFile);
        static string Hash(string t) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(t)));
        var tokens = new[] { Sam, Vera, Veit, Vito, Ada, Otto }.ToDictionary(p => p, _ => Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
        var auditor = Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));
        File.WriteAllText(Path.Combine(s.Root, "auditors.sha256"), $"{Hash(auditor)} audit@example\n");
        var vitoKey = SupplierRepo.NewKey(Path.Combine(s.Root, "people-keys"), "vito");
        string Person(string name, string roles, string pipelines) =>
            $"  - name: {name}\n    roles: [{roles}]\n    pipelines: [{pipelines}]\n    tokenSha256: {Hash(tokens[name])}\n" + (name == Vito ? $"    sshKey: {vitoKey.PublicKey}\n" : "");
        File.WriteAllText(Path.Combine(s.Root, "people.yaml"), "people:\n"
            + Person(Sam, "systempfleger", s.Name) + Person(Vera, "verfahrensverantwortlich", s.Name) + Person(Veit, "verfahrensverantwortlich", s.Name)
            + Person(Vito, "verfahrensverantwortlich", s.Name) + Person(Ada, "auditor", "\"*\"") + Person(Otto, "systempfleger, verfahrensverantwortlich", "other-app"));
        File.AppendAllText(s.ConfigPath, $"""

            attestation:
              signingKeyFile: engine-signing.pem
            ledger:
              origin: portal.example/ledger
            audit:
              apiTokensFile: auditors.sha256
            people:
              file: people.yaml
            stages:
              - name: Abnahme
                approval: {"{"} approvers: 1 {"}"}
              - name: Produktion
                approval: {"{"} approvers: 2 {"}"}
            {extraConfig}
            """);
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var accepted = (await s.RunAsync()).Deliveries.Single();
        Assert.That(accepted.Status, Is.EqualTo(DeliveryStatus.Accepted), accepted.Reason);

        var sink = new CapturingSink();
        var engine = await PipelineEngine.StartAsync(s.ConfigPath, TimeProvider.System, sink.Logger(), default);
        var server = await PortalServer.StartAsync(engine, "http://127.0.0.1:0", allowRemote: false, default);
        var image = accepted.Images.Single();
        return new Running(s, engine, server, new Uri(server.Addresses.Single()), tokens, accepted.DeliveryId, image[(image.IndexOf('@') + 1)..], auditor, sink) { VitoKey = vitoKey };
    }
}
