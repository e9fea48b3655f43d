using Pipeline.Engine.Ledger;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Metering;

/// <summary>A clock the seed moves: every row and ledger entry is stored at the time it says.</summary>
internal sealed class SeedClock : TimeProvider
{
    public DateTimeOffset Now { get; set; }

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>
/// Deliveries, scans, promotions and a Rücknahme across two tenants and two months (October and November 2025),
/// written through the engine's own ledger store into a fresh database, each at its own time.
/// </summary>
internal sealed class MeteringSeed(LedgerStore store, SeedClock clock)
{
    public static readonly string[] Stages = ["Vorprüfung", "Abnahme", "Schulung", "Produktion"];

    public static DateTimeOffset At(string utc) => DateTimeOffset.Parse(utc + "Z", System.Globalization.CultureInfo.InvariantCulture);

    private static string Sha(char c) => "sha256:" + new string(c, 64);

    /// <summary>The storage objects of image A (base layer L1 shared with image B).</summary>
    public static readonly (string, long)[] ImageA = [(Sha('1'), 100), (Sha('2'), 200), (Sha('a'), 10)];

    public static readonly (string, long)[] ImageB = [(Sha('1'), 100), (Sha('3'), 300), (Sha('b'), 20)];

    public static async Task SeedAsync(TestDatabase db)
    {
        var clock = new SeedClock { Now = At("2025-10-01T00:00:00") };
        await using var ds = db.DataSource();
        var store = new LedgerStore(ds, clock) { GroupCommit = false };
        await store.MigrateAsync(default);
        await new MeteringSeed(store, clock).RunAsync();
    }

    private async Task<Guid> Start(string pipeline, string tag, string at, Guid? retryOf = null)
    {
        clock.Now = At(at);
        var id = Guid.CreateVersion7();
        await store.StartDeliveryAsync(id, pipeline, tag, "obj-" + tag, retryOf is null ? 1 : 2, retryOf, default);
        return id;
    }

    private async Task Finish(Guid id, DeliveryStatus status, string at)
    {
        clock.Now = At(at);
        await store.FinishDeliveryAsync(id, status, status == DeliveryStatus.Rejected ? "SCAN-INFECTED" : null, null, null, default);
    }

    private async Task Entry(Guid id, string pipeline, string stage, string at, Dictionary<string, string> evidence, bool passed = true)
    {
        clock.Now = At(at);
        await store.AppendAsync(new StageRecord(id, pipeline, stage, passed ? Verdict.Passed : Verdict.Failed, passed ? null : "X", null, null, null, evidence), default);
    }

    private Task Fetch(Guid id, string p, string at, long bytes) => Entry(id, p, "fetch", at, new() { ["bytes"] = bytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });

    private Task Scan(Guid id, string p, string at, int files, long? bytes, bool passed = true)
    {
        var e = new Dictionary<string, string> { ["filesScanned"] = files.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        if (bytes is { } b) e["bytesScanned"] = b.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Entry(id, p, "scan", at, e, passed);
    }

    private Task Promote(Guid id, string p, string stage, string at, (string Digest, long Size)[]? storage, string image = "sha256:" + "c0ffee")
    {
        var repo = $"{p}/app";
        var e = new Dictionary<string, string> { [$"{repo}.source"] = $"registry.local/{repo}@{image}", ["toStage"] = stage };
        if (storage is not null)
        {
            e[$"{repo}.storage"] = string.Join(' ', storage.Select(s => $"{s.Digest}={s.Size}"));
            e[$"{repo}.storageBytes"] = storage.Sum(s => s.Size).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        return Entry(id, p, "promotion:" + stage, at, e);
    }

    private async Task RunAsync()
    {
        const string fv = "fachverfahren", ka = "kataster", alt = "altverfahren";

        // October: d6 accepted and promoted into Vorprüfung (1000 bytes), withdrawn in November.
        var d6 = await Start(fv, "v0.9.0", "2025-10-10T08:00:00");
        await Scan(d6, fv, "2025-10-10T08:01:00", 1, 70);
        await Finish(d6, DeliveryStatus.Accepted, "2025-10-10T08:05:00");
        await Promote(d6, fv, "Vorprüfung", "2025-10-10T09:00:00", [("sha256:" + new string('9', 64), 1000)], "sha256:d6");

        // d2: its first attempt started on 31 October (pending), the retry on 1 November; an old-style scan entry
        // (no bytesScanned: the fetch stage's bytes count).
        var d2a = await Start(fv, "v1.0.0", "2025-10-31T23:00:00");
        clock.Now = At("2025-10-31T23:10:00");
        await store.MarkPendingAsync(d2a, "SCAN-CLAMD-UNREACHABLE", "clamd down", At("2025-11-01T01:00:00"), default);
        var d2 = await Start(fv, "v1.0.0", "2025-11-01T01:00:00", d2a);
        await Fetch(d2, fv, "2025-11-01T01:01:00", 500);
        await Scan(d2, fv, "2025-11-01T01:02:00", 2, null);
        await Finish(d2, DeliveryStatus.Accepted, "2025-11-01T01:10:00");
        await Promote(d2, fv, "Vorprüfung", "2025-11-01T02:00:00", ImageB, "sha256:d2");
        await Promote(d2, fv, "Abnahme", "2025-11-02T02:00:00", ImageB, "sha256:d2");
        await Promote(d2, fv, "Schulung", "2025-11-02T03:00:00", ImageB, "sha256:d2");
        await Promote(d2, fv, "Produktion", "2025-11-04T23:00:00", ImageB, "sha256:d2"); // 4 days after the first attempt

        // d1: 7 days from intake to Produktion.
        var d1 = await Start(fv, "v1.1.0", "2025-11-03T10:00:00");
        await Fetch(d1, fv, "2025-11-03T10:01:00", 1000);
        await Scan(d1, fv, "2025-11-03T10:02:00", 3, 900);
        await Finish(d1, DeliveryStatus.Accepted, "2025-11-03T10:05:00");
        foreach (var (stage, day) in Stages.Zip(new[] { "03T11", "05T10", "06T10", "10T10" }))
            await Promote(d1, fv, stage, $"2025-11-{day}:00:00", ImageA, "sha256:d1");

        // d3: rejected by the scan (its evidence still counts what was scanned).
        var d3 = await Start(fv, "v1.2.0", "2025-11-15T10:00:00");
        await Scan(d3, fv, "2025-11-15T10:01:00", 1, 50, passed: false);
        await Finish(d3, DeliveryStatus.Rejected, "2025-11-15T10:02:00");

        // The Rücknahme of d6: its image leaves Vorprüfung.
        await Entry(d6, fv, "withdrawal", "2025-11-20T12:00:00", new() { ["detail"] = "taken back" }, passed: false);

        // d4: the last microsecond of November; its promotion recorded no sizes (before the engine recorded them).
        var d4 = await Start(fv, "v1.3.0", "2025-11-30T23:00:00");
        await Scan(d4, fv, "2025-11-30T23:00:01", 1, 10);
        await Promote(d4, fv, "Vorprüfung", "2025-11-30T23:30:00", null, "sha256:d4");
        await Finish(d4, DeliveryStatus.Accepted, "2025-11-30T23:59:59.999999");

        // d5: the first instant of December: not November.
        var d5 = await Start(fv, "v1.4.0", "2025-11-30T23:59:59");
        await Scan(d5, fv, "2025-12-01T00:00:00", 5, 5000);
        await Finish(d5, DeliveryStatus.Accepted, "2025-12-01T00:00:00");
        await Promote(d5, fv, "Vorprüfung", "2025-12-01T00:00:01", [("sha256:" + new string('5', 64), 5000)], "sha256:d5");

        // Tenant land-b: kataster accepted and promoted once; another left pending by an outage; a scan clamd never answered.
        var d7 = await Start(ka, "v2.0.0", "2025-11-10T09:00:00");
        await Scan(d7, ka, "2025-11-10T09:01:00", 4, 4000);
        await Finish(d7, DeliveryStatus.Accepted, "2025-11-10T09:02:00");
        await Promote(d7, ka, "Vorprüfung", "2025-11-10T10:00:00", [("sha256:" + new string('7', 64), 5)], "sha256:d7");
        var d8 = await Start(ka, "v2.1.0", "2025-11-20T09:00:00");
        await Entry(d8, ka, "scan", "2025-11-20T09:01:00", new(), passed: false);
        clock.Now = At("2025-11-20T09:02:00");
        await store.MarkPendingAsync(d8, "SCAN-CLAMD-UNREACHABLE", "clamd down", At("2025-11-20T10:00:00"), default);

        // No tenant: altverfahren, one rejection.
        var d9 = await Start(alt, "v0.1.0", "2025-11-11T11:00:00");
        await Finish(d9, DeliveryStatus.Rejected, "2025-11-11T11:01:00");
    }
}
