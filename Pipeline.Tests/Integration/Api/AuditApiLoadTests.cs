using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Pipeline.Engine.Api;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// The audit API under a burst of auditors: a bounded number of requests (and database connections)
/// at a time, the rest told to come back (503, Retry-After, a JSON error with a code), and every
/// error answered as JSON and logged with the status the client really got.
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class AuditApiLoadTests : DeliveryFixture
{
    [Test]
    public async Task Two_hundred_concurrent_requests_use_a_bounded_pool_and_the_rest_get_503_with_retry_after()
    {
        await using var api = await AuditApiTests.StartAsync(Harness);
        using var http = new HttpClient { BaseAddress = api.BaseUrl, Timeout = TimeSpan.FromMinutes(2) };
        var maxSessions = 0;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            await using var ds = Harness.Database.DataSource();
            while (!stop.IsCancellationRequested)
            {
                await using var cmd = ds.CreateCommand("select count(*) from pg_stat_activity where application_name = $1");
                cmd.Parameters.AddWithValue(AuditApiServer.ApplicationName);
                maxSessions = Math.Max(maxSessions, Convert.ToInt32(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture));
            }
        });

        var statuses = new ConcurrentBag<(HttpStatusCode Status, string? Code, string? RetryAfter)>();
        var paths = new[] { $"/api/export/{api.Digest}", "/api/verify", $"/api/trace/{api.Digest}", "/api/query?limit=50" };
        await Task.WhenAll(Enumerable.Range(0, 200).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, paths[i % paths.Length]);
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", api.Token);
            using var response = await http.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            string? code = null;
            if (!response.IsSuccessStatusCode)
            {
                Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"), body);
                code = JsonNode.Parse(body)!["code"]!.GetValue<string>();
            }

            statuses.Add((response.StatusCode, code, response.Headers.RetryAfter?.ToString()));
        }));
        await stop.CancelAsync();
        await sampler;

        var byStatus = statuses.GroupBy(s => (s.Status, s.Code)).ToDictionary(g => g.Key, g => g.Count());
        Assert.That(byStatus.Keys.Select(k => k.Status), Is.SubsetOf(new[] { HttpStatusCode.OK, HttpStatusCode.ServiceUnavailable }), string.Join(", ", byStatus));
        Assert.That(statuses.Count(s => s.Status == HttpStatusCode.OK), Is.GreaterThanOrEqualTo(ApiLimits.Default.Concurrent + ApiLimits.Default.Queued));
        Assert.That(statuses.Where(s => s.Status == HttpStatusCode.ServiceUnavailable).Select(s => (s.Code, s.RetryAfter)),
            Has.All.EqualTo(("API-BUSY", ApiLimits.Default.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        Assert.That(maxSessions, Is.InRange(1, ApiLimits.Default.MaxPoolSize), "the API's database sessions are bounded by its own pool");
        var busy = statuses.Count(s => s.Status == HttpStatusCode.ServiceUnavailable);
        TestContext.Out.WriteLine($"200 requests: {string.Join(", ", byStatus)}; at most {maxSessions} API database sessions");
        Assert.That(api.Log.Lines.Count(l => l.Contains(" 503 in ")), Is.EqualTo(busy), "logged with the status the client got");
    }

    [Test]
    public async Task A_database_failure_in_export_is_a_json_503_logged_as_503_not_an_empty_500_logged_as_200()
    {
        using var dir = new TempDir("pipeline-api-down-");
        var token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var tokens = AuditApiTokens.Parse($"{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)))} alice\n", "test");
        // A ledger database that is not there.
        await using var down = LedgerStore.CreateDataSource("Host=127.0.0.1;Port=1;Username=x;Database=y;Timeout=2", null);
        using var key = EngineSigningKey.Generate();
        var audit = new AuditService(new LedgerStore(down, TimeProvider.System), new KeyRing([key.Public]), "test/ledger");
        var sink = new CapturingSink();
        await using var app = AuditApiHost.Build(audit, tokens, [new Uri("http://127.0.0.1:0")], sink.Logger());
        await app.StartAsync();
        var server = (Microsoft.AspNetCore.Hosting.Server.IServer)app.Services.GetService(typeof(Microsoft.AspNetCore.Hosting.Server.IServer))!;
        var url = server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Single();
        using var http = new HttpClient { BaseAddress = new Uri(url) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);

        foreach (var path in new[] { "/api/export/sha256:" + new string('a', 64), "/api/verify" })
        {
            using var response = await http.GetAsync(path);
            var body = await response.Content.ReadAsStringAsync();
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), $"{path}: {body}");
            Assert.That(JsonNode.Parse(body)!["code"]!.GetValue<string>(), Is.EqualTo("API-UNAVAILABLE"));
            Assert.That(response.Headers.RetryAfter, Is.Not.Null);
            Assert.That(sink.Lines, Has.Some.Contains($"Audit API \"GET\" \"{path}\" 503 in "), "logged with the real status");
        }

        await app.StopAsync();
    }
}
