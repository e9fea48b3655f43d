using System.Globalization;
using System.Text.RegularExpressions;

namespace Pipeline.Engine.Metering;

/// <summary>The error codes of metering reports.</summary>
public static class MeteringErrors
{
    /// <summary><c>--month</c> is not a calendar month <c>YYYY-MM</c>, or lies in the future.</summary>
    public const string MonthInvalid = "REPORT-MONTH-INVALID";

    /// <summary><c>--tenant</c> names no tenant of engine.yaml <c>tenants:</c>.</summary>
    public const string TenantUnknown = "REPORT-TENANT-UNKNOWN";

    /// <summary>The report could not be written to <c>--out</c> (nothing was left half-written).</summary>
    public const string WriteFailed = "REPORT-WRITE-FAILED";
}

/// <summary>One calendar month in UTC: [<see cref="Start"/>, <see cref="End"/>).</summary>
public sealed partial record MeteringPeriod(int Year, int Month)
{
    public DateTimeOffset Start => new(Year, Month, 1, 0, 0, 0, TimeSpan.Zero);

    public DateTimeOffset End => Start.AddMonths(1);

    /// <summary><c>YYYY-MM</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Year:D4}-{Month:D2}");

    /// <summary>The month before the one <paramref name="now"/> lies in (the default of <c>pipeline report</c>).</summary>
    public static MeteringPeriod Previous(DateTimeOffset now)
    {
        var first = new DateTimeOffset(now.UtcDateTime.Year, now.UtcDateTime.Month, 1, 0, 0, 0, TimeSpan.Zero).AddMonths(-1);
        return new MeteringPeriod(first.Year, first.Month);
    }

    /// <summary>Parses <c>YYYY-MM</c> (year 2000 to 9999); a month after the one <paramref name="now"/> lies in is refused.</summary>
    /// <exception cref="PipelineException">REPORT-MONTH-INVALID.</exception>
    public static MeteringPeriod Parse(string text, DateTimeOffset now)
    {
        var m = MonthPattern().Match(text);
        if (!m.Success)
            throw new PipelineException(MeteringErrors.MonthInvalid, $"--month '{Printable(text)}' is not a calendar month; write YYYY-MM, e.g. 2026-11");
        var year = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        var month = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        if (year < 2000 || month is < 1 or > 12)
            throw new PipelineException(MeteringErrors.MonthInvalid, $"--month '{text}' is not a calendar month; the year is 2000 to 9999 and the month 01 to 12");
        var period = new MeteringPeriod(year, month);
        if (period.Start > now)
            throw new PipelineException(MeteringErrors.MonthInvalid, $"--month {period} lies in the future (now is {now.UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'}); report a past or the current month");
        return period;
    }

    private static string Printable(string s) =>
        new(s.Take(40).Select(c => char.IsControl(c) ? '?' : c).ToArray());

    [GeneratedRegex(@"^([0-9]{4})-([0-9]{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex MonthPattern();
}
