using System.Text.Json;
using Json.Schema;
using Npgsql;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Metering;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Metering;

/// <summary>
/// <c>pipeline report</c> against real PostgreSQL, seeded through the ledger store with deliveries, scans,
/// promotions and a Rücknahme across two tenants and two months (<see cref="MeteringSeed"/>): exact numbers,
/// the month boundary, the tenant filter, CSV that parses back to the JSON's numbers, the JSON schema, and the
/// error codes of bad input.
/// </summary>
[Category("Integration")]
public class MeteringReportTests
{
    private TestDatabase _db = null!;
    private TempDir _dir = null!;
    private string _config = null!;

    [OneTimeSetUp]
    public async Task SeedAsync()
    {
        _db = await TestDatabase.CreateAsync();
        await MeteringSeed.SeedAsync(_db);
        _dir = new TempDir("metering-");
        Directory.CreateDirectory(_dir.Combine("pipelines"));
        _config = _dir.Combine("engine.yaml");
        File.WriteAllText(_config, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "{_db.ConnectionString}"
            ledger:
              origin: metering.example/ledger
            tenants:
              - id: land-a
                name: Landesamt A
                pipelines: [fachverfahren, meldewesen]
              - id: land-b
                name: Landesamt B
                pipelines: [kataster]
            """);
    }

    [OneTimeTearDown]
    public async Task DropAsync()
    {
        _dir.Dispose();
        await _db.DisposeAsync();
    }

    private async Task<(int Rc, string Out, string Err)> Report(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync(["report", "--config", _config, .. args], o, e);
        return (rc, o.ToString(), e.ToString());
    }

    private static JsonElement Row(JsonElement report, string pipeline) =>
        report.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("pipeline").GetString() == pipeline);

    private static Dictionary<string, long> ByStage(JsonElement o) => o.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64());

    [Test]
    public async Task November_counts_each_tenant_and_application_exactly()
    {
        var (rc, o, e) = await Report("--month", "2025-11", "--format", "json");
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        using var doc = JsonDocument.Parse(o);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("period").GetProperty("month").GetString(), Is.EqualTo("2025-11"));
        Assert.That(root.GetProperty("period").GetProperty("start").GetString(), Is.EqualTo("2025-11-01T00:00:00Z"));
        Assert.That(root.GetProperty("period").GetProperty("end").GetString(), Is.EqualTo("2025-12-01T00:00:00Z"));
        Assert.That(root.GetProperty("period").GetProperty("complete").GetBoolean(), Is.True);
        Assert.That(root.GetProperty("tenant").ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(root.GetProperty("rows").EnumerateArray().Select(r => (r.GetProperty("tenant").GetString(), r.GetProperty("pipeline").GetString())),
            Is.EqualTo(new[] { ("", "altverfahren"), ("land-a", "fachverfahren"), ("land-a", "meldewesen"), ("land-b", "kataster") }),
            "every configured application (meldewesen without activity too) and the one without a tenant, sorted by tenant and pipeline");

        var fv = Row(root, "fachverfahren");
        var d = fv.GetProperty("deliveries");
        Assert.That((d.GetProperty("accepted").GetInt64(), d.GetProperty("rejected").GetInt64(), d.GetProperty("pending").GetInt64(), d.GetProperty("withdrawn").GetInt64()),
            Is.EqualTo((3L, 1L, 0L, 1L)), "d1, d2 (retry), d4 (last microsecond); d3 rejected; the first attempt of d2 is retried, not pending; d6 withdrawn; d5 is December's");
        Assert.That((fv.GetProperty("scan").GetProperty("files").GetInt64(), fv.GetProperty("scan").GetProperty("bytes").GetInt64()),
            Is.EqualTo((7L, 1460L)), "900 + 500 (an old scan entry: the fetched bytes) + 50 (rejected) + 10");
        Assert.That(fv.GetProperty("promotions").GetProperty("total").GetInt64(), Is.EqualTo(9));
        Assert.That(ByStage(fv.GetProperty("promotions").GetProperty("byStage")),
            Is.EqualTo(new Dictionary<string, long> { ["Abnahme"] = 2, ["Produktion"] = 2, ["Schulung"] = 2, ["Vorprüfung"] = 3 }));
        var storage = fv.GetProperty("storage");
        Assert.That(ByStage(storage.GetProperty("bytesByStage")),
            Is.EqualTo(new Dictionary<string, long> { ["Abnahme"] = 630, ["Produktion"] = 630, ["Schulung"] = 630, ["Vorprüfung"] = 630 }),
            "images A and B share their base layer (100 bytes, counted once); d6 was withdrawn; d4 recorded no sizes; d5 came in December");
        Assert.That((storage.GetProperty("bytes").GetInt64(), storage.GetProperty("imagesWithoutSizes").GetInt64()), Is.EqualTo((2520L, 1L)));
        var final = fv.GetProperty("toFinalStage");
        Assert.That(final.GetProperty("stage").GetString(), Is.EqualTo("Produktion"));
        Assert.That(final.GetProperty("deliveries").GetInt32(), Is.EqualTo(2));
        Assert.That(final.GetProperty("medianSeconds").GetDouble(), Is.EqualTo((4 * 86400 + 7 * 86400) / 2.0), "4 days from d2's first attempt, 7 days for d1");
        Assert.That(final.GetProperty("maxSeconds").GetDouble(), Is.EqualTo(7 * 86400));

        var ka = Row(root, "kataster");
        Assert.That((ka.GetProperty("deliveries").GetProperty("accepted").GetInt64(), ka.GetProperty("deliveries").GetProperty("pending").GetInt64()), Is.EqualTo((1L, 1L)));
        Assert.That((ka.GetProperty("scan").GetProperty("files").GetInt64(), ka.GetProperty("scan").GetProperty("bytes").GetInt64()), Is.EqualTo((4L, 4000L)),
            "a scan clamd never answered (no evidence) scanned nothing");
        Assert.That(ByStage(ka.GetProperty("storage").GetProperty("bytesByStage")), Is.EqualTo(new Dictionary<string, long> { ["Vorprüfung"] = 5 }));
        Assert.That(ka.GetProperty("toFinalStage").GetProperty("medianSeconds").ValueKind, Is.EqualTo(JsonValueKind.Null));

        var idle = Row(root, "meldewesen");
        Assert.That(idle.GetProperty("deliveries").GetProperty("accepted").GetInt64() + idle.GetProperty("scan").GetProperty("bytes").GetInt64() +
                    idle.GetProperty("promotions").GetProperty("total").GetInt64(), Is.Zero);
        Assert.That(Row(root, "altverfahren").GetProperty("deliveries").GetProperty("rejected").GetInt64(), Is.EqualTo(1));
    }

    [Test]
    public async Task October_ends_at_its_last_instant_and_counts_what_was_in_the_stages_then()
    {
        var (rc, o, e) = await Report("--month", "2025-10", "--format", "json");
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        using var doc = JsonDocument.Parse(o);
        Assert.That(doc.RootElement.GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("pipeline").GetString()),
            Is.EqualTo(new[] { "fachverfahren", "meldewesen", "kataster" }), "altverfahren had nothing in October");
        var fv = Row(doc.RootElement, "fachverfahren");
        Assert.That((fv.GetProperty("deliveries").GetProperty("accepted").GetInt64(), fv.GetProperty("deliveries").GetProperty("pending").GetInt64(),
            fv.GetProperty("deliveries").GetProperty("withdrawn").GetInt64()), Is.EqualTo((1L, 0L, 0L)));
        Assert.That(fv.GetProperty("scan").GetProperty("bytes").GetInt64(), Is.EqualTo(70));
        Assert.That(ByStage(fv.GetProperty("promotions").GetProperty("byStage")), Is.EqualTo(new Dictionary<string, long> { ["Vorprüfung"] = 1 }));
        Assert.That(ByStage(fv.GetProperty("storage").GetProperty("bytesByStage")), Is.EqualTo(new Dictionary<string, long> { ["Vorprüfung"] = 1000 }),
            "d6 was withdrawn only in November");
        Assert.That(fv.GetProperty("toFinalStage").GetProperty("deliveries").GetInt32(), Is.Zero);
    }

    [Test]
    public async Task Tenant_filter_reports_only_that_tenants_applications()
    {
        var (rc, o, e) = await Report("--month", "2025-11", "--tenant", "land-b", "--format", "json");
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        using var doc = JsonDocument.Parse(o);
        Assert.That(doc.RootElement.GetProperty("tenant").GetString(), Is.EqualTo("land-b"));
        Assert.That(doc.RootElement.GetProperty("rows").EnumerateArray().Select(r => r.GetProperty("pipeline").GetString()), Is.EqualTo(new[] { "kataster" }));

        (rc, o, e) = await Report("--month", "2025-11", "--tenant", "land-a");
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        var rows = Csv.Parse(o);
        Assert.That(rows.Skip(1).Select(r => (r[1], r[2])), Is.EqualTo(new[] { ("land-a", "fachverfahren"), ("land-a", "meldewesen") }));
    }

    [Test]
    public async Task Csv_parses_back_to_the_same_numbers_as_the_json_and_the_json_matches_its_schema()
    {
        var (rc, csv, e) = await Report("--month", "2025-11");
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        Assert.That(csv, Does.Contain("\r\n"), "RFC 4180 line breaks");
        var rows = Csv.Parse(csv);
        Assert.That(rows[0], Is.EqualTo(MeteringFormats.Columns));
        Assert.That(rows[0], Is.EqualTo(new[]
        {
            "month", "tenant", "pipeline", "deliveries_accepted", "deliveries_rejected", "deliveries_pending", "deliveries_withdrawn",
            "files_scanned", "bytes_scanned", "promotions", "promotions_by_stage", "storage_bytes", "storage_bytes_by_stage",
            "storage_images_without_sizes", "final_stage", "reached_final", "to_final_median_seconds", "to_final_max_seconds",
        }), "the column names are an interface: change them only with a new report version");
        var fv = rows.Single(r => r[2] == "fachverfahren");
        Assert.That(fv, Is.EqualTo(new[]
        {
            "2025-11", "land-a", "fachverfahren", "3", "1", "0", "1", "7", "1460", "9", "Abnahme=2;Produktion=2;Schulung=2;Vorprüfung=3",
            "2520", "Abnahme=630;Produktion=630;Schulung=630;Vorprüfung=630", "1", "Produktion", "2", "475200", "604800",
        }));
        Assert.That(rows.Single(r => r[2] == "kataster")[^2..], Is.EqualTo(new[] { "", "" }), "no delivery reached Produktion: empty, not 0");
        Assert.That(rows.Single(r => r[2] == "altverfahren")[1], Is.Empty);

        string json;
        (rc, json, e) = await Report("--month", "2025-11", "--format", "json");
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        var schema = JsonSchema.FromText(File.ReadAllText(Path.Combine(TestServices.RepoRoot, "docs", "metering", "metering-report-v1.schema.json")));
        Assert.That(JsonSchemas.Errors(schema, System.Text.Encoding.UTF8.GetBytes(json)), Is.Empty);
        using var doc = JsonDocument.Parse(json);
        foreach (var row in rows.Skip(1))
        {
            var j = Row(doc.RootElement, row[2]);
            Assert.That(row[3..10], Is.EqualTo(new[]
            {
                j.GetProperty("deliveries").GetProperty("accepted").GetInt64(), j.GetProperty("deliveries").GetProperty("rejected").GetInt64(),
                j.GetProperty("deliveries").GetProperty("pending").GetInt64(), j.GetProperty("deliveries").GetProperty("withdrawn").GetInt64(),
                j.GetProperty("scan").GetProperty("files").GetInt64(), j.GetProperty("scan").GetProperty("bytes").GetInt64(),
                j.GetProperty("promotions").GetProperty("total").GetInt64(),
            }.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture))), row[2]);
            Assert.That(row[11], Is.EqualTo(j.GetProperty("storage").GetProperty("bytes").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture)), row[2]);
        }
    }

    [Test]
    public async Task Out_is_written_whole_or_not_at_all()
    {
        var file = _dir.Combine("report.csv");
        File.WriteAllText(file, "an older report that must be replaced whole\n");
        var (rc, o, e) = await Report("--month", "2025-11", "--out", file);
        Assert.That(rc, Is.EqualTo(PipelineCli.Ok), e);
        Assert.That(o, Does.Contain("4 row(s) written to " + file));
        Assert.That(File.ReadAllText(file), Is.EqualTo((await Report("--month", "2025-11")).Out));
        Assert.That(Directory.GetFiles(_dir.Path, "*.tmp"), Is.Empty, "no temporary file left");

        var missing = _dir.Combine("no-such-folder", "report.csv");
        (rc, _, e) = await Report("--month", "2025-11", "--out", missing);
        Assert.That(rc, Is.EqualTo(PipelineCli.Failure));
        Assert.That(e, Does.StartWith("REPORT-WRITE-FAILED: "));
        Assert.That(File.Exists(missing), Is.False);
    }

    [TestCase("2025-13")]
    [TestCase("2025-00")]
    [TestCase("1999-12")]
    [TestCase("2025-1")]
    [TestCase("November")]
    [TestCase("2025-11-01")]
    [TestCase("9999-01")]
    public async Task A_bad_month_is_a_usage_error_with_its_code(string month)
    {
        var (rc, o, e) = await Report("--month", month);
        Assert.That((rc, o), Is.EqualTo((PipelineCli.ConfigError, "")));
        Assert.That(e, Does.StartWith(MeteringErrors.MonthInvalid + ": "));
    }

    [Test]
    public async Task An_unknown_tenant_or_format_is_a_usage_error_with_its_code()
    {
        var (rc, o, e) = await Report("--month", "2025-11", "--tenant", "land-z");
        Assert.That((rc, o), Is.EqualTo((PipelineCli.ConfigError, "")));
        Assert.That(e, Does.StartWith(MeteringErrors.TenantUnknown + ": ").And.Contain("land-a, land-b"));

        (rc, o, e) = await Report("--month", "2025-11", "--format", "xml");
        Assert.That((rc, o), Is.EqualTo((PipelineCli.ConfigError, "")));
        Assert.That(e, Does.StartWith("CLI-USAGE: "));
    }
}

/// <summary>An RFC 4180 reader (quoted fields with commas, doubled quotes and line breaks), to read the report back.</summary>
internal static class Csv
{
    public static List<string[]> Parse(string text)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new System.Text.StringBuilder();
        var quoted = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { row.Add(field.ToString()); field.Clear(); }
            else if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add([.. row]);
                row.Clear();
                i++;
            }
            else field.Append(c);
        }

        Assert.That(quoted, Is.False, "unterminated quoted field");
        Assert.That(field.Length + row.Count, Is.Zero, "the last line ends with CRLF");
        return rows;
    }
}
