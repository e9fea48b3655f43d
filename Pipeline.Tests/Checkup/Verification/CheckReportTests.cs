using Pipeline.Checkup.Verification;

namespace Pipeline.Tests.Checkup.Verification;

public class CheckReportTests
{
    [Test]
    public void Passed_needs_at_least_one_check_and_all_passing()
    {
        Assert.That(new CheckReport([]).Passed, Is.False, "no checks is not a pass");
        Assert.That(new CheckReport([new("checksums", true, "ok")]).Passed, Is.True);
        Assert.That(new CheckReport([new("checksums", true, "ok"), new("scan", false, "CHK-AV-010")]).Passed, Is.False);
    }
}
