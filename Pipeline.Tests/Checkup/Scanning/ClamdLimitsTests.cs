using Pipeline.Checkup.Scanning;

namespace Pipeline.Tests.Checkup.Scanning;

/// <summary>clamd's limits are read the way clamd reads its configuration: suffixes, defaults, last key wins, errors with lines.</summary>
public class ClamdLimitsTests
{
    [Test]
    public void Sizes_take_K_and_M_suffixes_and_absent_keys_take_clamds_defaults()
    {
        var problems = new List<ClamdLimits.Problem>();
        var l = ClamdLimits.Parse("# comment\nMaxFileSize 64M\nMaxScanSize 262144K\n\tMaxRecursion  8\nStreamMaxLength 1000\n", "t.conf", problems)!;
        Assert.That(problems, Is.Empty);
        Assert.That((l.MaxFileSize, l.MaxScanSize, l.MaxRecursion, l.StreamMaxLength), Is.EqualTo((64L << 20, 256L << 20, 8, 1000L)));
        Assert.That(l.MaxFiles, Is.EqualTo(ClamdLimits.Defaults.MaxFiles), "MaxFiles is absent: clamd's default 10000");
        Assert.That(l.Source, Is.EqualTo("t.conf"));
    }

    [Test]
    public void An_empty_configuration_means_clamds_documented_defaults()
    {
        var l = ClamdLimits.Parse("", "empty", [])!;
        Assert.That((l.MaxFileSize, l.MaxScanSize, l.MaxRecursion, l.MaxFiles, l.StreamMaxLength),
            Is.EqualTo((100L << 20, 400L << 20, 17, 10_000, 100L << 20)));
    }

    [Test]
    public void The_last_occurrence_of_a_key_wins_as_in_clamd()
    {
        var l = ClamdLimits.Parse("MaxFileSize 10M\nMaxFileSize 20M\n", "t", [])!;
        Assert.That(l.MaxFileSize, Is.EqualTo(20L << 20));
    }

    [Test]
    public void Unreadable_values_are_reported_with_their_line_and_nothing_is_assumed()
    {
        var problems = new List<ClamdLimits.Problem>();
        var l = ClamdLimits.Parse("Foreground yes\nMaxFileSize 64G\nMaxFiles many\nScanArchive no\n", "t", problems);
        Assert.That(l, Is.Null);
        Assert.That(problems.Select(p => p.Line), Is.EqualTo(new[] { 2, 3, 4 }));
        Assert.That(problems[0].Message, Does.Contain("MaxFileSize '64G'"));
        Assert.That(problems[1].Message, Does.Contain("MaxFiles 'many'"));
        Assert.That(problems[2].Message, Does.Contain("ScanArchive is off"));
    }
}
