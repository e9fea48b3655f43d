using Pipeline.Engine.Vcs;

namespace Pipeline.Tests.Engine.Vcs;

public class VersionOrderTests
{
    /// <summary>Each pair: the first is older than the second (SemVer 2.0 precedence, section 11, and our rule for other tags).</summary>
    [TestCase("v1.10.0-rc1", "v1.10.0", Description = "a release candidate precedes its release")]
    [TestCase("v1.9.3", "v1.10.0", Description = "numeric, not textual")]
    [TestCase("v1.10.0", "v2.0.0")]
    [TestCase("1.0.0-alpha", "1.0.0-alpha.1", Description = "a larger set of prerelease fields has higher precedence")]
    [TestCase("1.0.0-alpha.1", "1.0.0-alpha.beta", Description = "numeric identifiers are below alphanumeric ones")]
    [TestCase("1.0.0-alpha.beta", "1.0.0-beta")]
    [TestCase("1.0.0-beta", "1.0.0-beta.2")]
    [TestCase("1.0.0-beta.2", "1.0.0-beta.11", Description = "numeric prerelease identifiers compare numerically")]
    [TestCase("1.0.0-beta.11", "1.0.0-rc.1")]
    [TestCase("1.0.0-rc.1", "1.0.0")]
    [TestCase("v1.0.0-rc.1+build.9", "v1.0.0+build.1", Description = "build metadata does not lift a prerelease")]
    [TestCase("v1.0.0-RC1", "v1.0.0-rc1", Description = "prerelease identifiers compare in ASCII order")]
    [TestCase("v1.2.0", "1.3.0", Description = "the leading v is optional")]
    [TestCase("release-99", "v0.0.1", Description = "a non-SemVer tag ranks below every SemVer tag")]
    [TestCase("v1.2", "v1.0.0", Description = "v1.2 is not SemVer (no patch)")]
    [TestCase("v01.9.4", "v1.0.0", Description = "leading zeros are not SemVer")]
    [TestCase("release-9", "release-10", Description = "non-SemVer tags compare naturally among themselves")]
    public void The_first_is_older(string older, string newer)
    {
        Assert.That(VersionOrder.Compare(older, newer), Is.LessThan(0), $"{older} should be older than {newer}");
        Assert.That(VersionOrder.Compare(newer, older), Is.GreaterThan(0), $"{newer} should be newer than {older}");
    }

    [TestCase("v1.0.0+build.1", "v1.0.0+build.2")]
    [TestCase("v1.0.0", "1.0.0+anything")]
    [TestCase("v1.0.0-rc.1+a", "1.0.0-rc.1")]
    public void Build_metadata_is_ignored_for_precedence(string a, string b)
    {
        Assert.That(VersionOrder.Compare(a, b), Is.Zero);
        Assert.That(VersionOrder.SortCompare(a, b), Is.Not.Zero, "listings still get a total order");
        Assert.That(Math.Sign(VersionOrder.SortCompare(a, b)), Is.EqualTo(-Math.Sign(VersionOrder.SortCompare(b, a))));
    }

    [Test]
    public void Accepting_a_release_candidate_does_not_make_the_release_a_rollback()
    {
        // VerifyStage rejects Compare(new, lastAccepted) < 0 as CHK-ROLLBACK.
        Assert.That(VersionOrder.Compare("v1.10.0", "v1.10.0-rc1"), Is.GreaterThan(0));
        Assert.That(VersionOrder.Compare("v1.10.0-rc2", "v1.10.0"), Is.LessThan(0), "a candidate after its release is a rollback");
    }

    [Test]
    public void A_listing_sorts_by_precedence()
    {
        var tags = new List<string> { "v1.10.0", "v1.9.3", "release-2", "v1.2.0", "v2.0.0", "v1.10.0-rc1", "v1.10.0-rc.2", "v01.9.4", "v1.10.0-beta" };
        tags.Sort(VersionOrder.SortCompare);
        Assert.That(tags, Is.EqualTo(new[] { "release-2", "v01.9.4", "v1.2.0", "v1.9.3", "v1.10.0-beta", "v1.10.0-rc.2", "v1.10.0-rc1", "v1.10.0", "v2.0.0" }));
    }
}
