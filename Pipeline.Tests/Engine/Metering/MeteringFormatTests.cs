using Pipeline.Engine;
using Pipeline.Engine.Metering;
using Pipeline.Tests.Integration.Metering;

namespace Pipeline.Tests.Engine.Metering;

/// <summary>The pure parts of metering: months, quoting, the median, stage cells and recorded storage.</summary>
public class MeteringFormatTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 1, 7, 0, 0, TimeSpan.Zero);

    [Test]
    public void The_default_month_is_the_previous_one_and_january_goes_back_a_year()
    {
        Assert.That(MeteringPeriod.Previous(Now).ToString(), Is.EqualTo("2026-11"));
        Assert.That(MeteringPeriod.Previous(new DateTimeOffset(2027, 1, 31, 23, 59, 59, TimeSpan.Zero)).ToString(), Is.EqualTo("2026-12"));
        Assert.That(MeteringPeriod.Previous(new DateTimeOffset(2027, 1, 1, 0, 30, 0, TimeSpan.FromHours(2))).ToString(), Is.EqualTo("2026-11"),
            "00:30 at +02:00 is still 31 December in UTC");
        var p = MeteringPeriod.Parse("2026-12", Now);
        Assert.That((p.Start, p.End), Is.EqualTo((new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero), new DateTimeOffset(2027, 1, 1, 0, 0, 0, TimeSpan.Zero))));
        var e = Assert.Throws<PipelineException>(() => MeteringPeriod.Parse("2027-01", Now))!;
        Assert.That((e.Code, e.Message), Is.EqualTo((MeteringErrors.MonthInvalid, "--month 2027-01 lies in the future (now is 2026-12-01T07:00:00Z); report a past or the current month")));
    }

    [TestCase("plain", "plain")]
    [TestCase("a,b", "\"a,b\"")]
    [TestCase("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [TestCase("two\nlines", "\"two\nlines\"")]
    [TestCase("", "")]
    public void Csv_fields_are_quoted_as_rfc_4180_says(string field, string expected) =>
        Assert.That(MeteringFormats.Quote(field), Is.EqualTo(expected));

    [Test]
    public void A_row_with_odd_names_survives_the_round_trip()
    {
        var row = new MeteringRow("t", "p,\"x\"", 1, 0, 0, 0, 0, 0, new Dictionary<string, long> { ["A;b=c%"] = 2 }, new Dictionary<string, long>(), 0, "Prod, final", [10, 30, 20, 40]);
        var csv = MeteringFormats.ToCsv(new MeteringReport(new MeteringPeriod(2026, 11), null, Now, true, [row]));
        var parsed = Csv.Parse(csv);
        Assert.That(parsed[1][2], Is.EqualTo("p,\"x\""));
        Assert.That(parsed[1][10], Is.EqualTo("A%3Bb%3Dc%25=2"));
        Assert.That(parsed[1][14], Is.EqualTo("Prod, final"));
        Assert.That((parsed[1][16], parsed[1][17]), Is.EqualTo(("25", "40")), "median of an even count: the mean of the two middle values");
        Assert.That(row with { ToFinalSeconds = [5, 1, 3] }, Has.Property(nameof(MeteringRow.ToFinalMedianSeconds)).EqualTo(3));
    }

    [Test]
    public void Recorded_storage_parses_back_and_malformed_text_is_refused()
    {
        var stored = new[] { new Pipeline.Registry.Copy.StoredObject(Pipeline.Registry.Model.Digest.Parse("sha256:" + new string('b', 64)), 7),
                             new Pipeline.Registry.Copy.StoredObject(Pipeline.Registry.Model.Digest.Parse("sha256:" + new string('a', 64)), 5) };
        var evidence = StorageEvidence.For("app/web", stored).ToDictionary();
        Assert.That(evidence["app/web.storageBytes"], Is.EqualTo("12"));
        Assert.That(StorageEvidence.Parse(evidence["app/web.storage"]), Is.EqualTo(new[] { ("sha256:" + new string('a', 64), 5L), ("sha256:" + new string('b', 64), 7L) }));
        Assert.That(StorageEvidence.Parse("sha256:aa=-1"), Is.Null);
        Assert.That(StorageEvidence.Parse("nonsense"), Is.Null);
    }
}
