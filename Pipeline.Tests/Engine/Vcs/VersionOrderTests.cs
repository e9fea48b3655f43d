using Pipeline.Engine.Vcs;

namespace Pipeline.Tests.Engine.Vcs;

public class VersionOrderTests
{
    [Test]
    public void Digit_runs_compare_as_numbers()
    {
        var tags = new List<string> { "v1.10.0", "v1.9.3", "v1.2.0", "v2.0.0", "v1.10.0-rc1", "v01.9.4" };
        tags.Sort(VersionOrder.Compare);
        Assert.That(tags, Is.EqualTo(new[] { "v1.2.0", "v1.9.3", "v01.9.4", "v1.10.0", "v1.10.0-rc1", "v2.0.0" }));
    }
}
