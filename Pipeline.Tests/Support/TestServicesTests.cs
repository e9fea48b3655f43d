using NUnit.Framework.Internal;

namespace Pipeline.Tests.Support;

/// <summary>
/// The one gate for tests that cannot run here: a failure under <c>PIPELINE_REQUIRE_SERVICES=1</c>
/// (CI), an ignore with the same message otherwise. Each call runs in an isolated NUnit context so
/// the recorded outcome is the helper's, not this test's.
/// </summary>
public class TestServicesTests
{
    private static Exception Outcome(Action call)
    {
        using var isolated = new TestExecutionContext.IsolatedContext();
        try
        {
            call();
        }
        catch (Exception e)
        {
            return e;
        }
        throw new AssertionException("the helper returned instead of ending the test");
    }

    [Test]
    public void A_missing_prerequisite_fails_when_services_are_required()
    {
        var e = Outcome(() => TestServices.Unavailable("clamd is not installed", servicesRequired: true));
        Assert.That(e, Is.TypeOf<AssertionException>());
        Assert.That(e.Message, Does.StartWith("clamd is not installed").And.Contain("PIPELINE_REQUIRE_SERVICES=1"));
    }

    [Test]
    public void A_missing_prerequisite_is_ignored_with_its_reason_otherwise()
    {
        var e = Outcome(() => TestServices.Unavailable("clamd is not installed", servicesRequired: false));
        Assert.That(e, Is.TypeOf<IgnoreException>());
        Assert.That(e.Message, Is.EqualTo("clamd is not installed"));
    }

    [Test]
    public void Missing_tools_files_and_settings_go_through_the_same_gate()
    {
        // scripts/test.sh runs the suite with PIPELINE_REQUIRE_SERVICES=1; outside it, they are ignored.
        var expected = TestServices.ServicesRequired ? typeof(AssertionException) : typeof(IgnoreException);
        var missing = "no-such-tool-" + Guid.NewGuid().ToString("N");
        Assert.That(Outcome(() => TestServices.RequireTool(missing, "none")), Is.TypeOf(expected).With.Message.Contains(missing + " is not installed"));
        Assert.That(Outcome(() => TestServices.RequireFile("/" + missing, "none")), Is.TypeOf(expected).With.Message.Contains("/" + missing + " is absent"));
        Assert.That(Outcome(() => TestServices.Require("PIPELINE_" + missing)), Is.TypeOf(expected).With.Message.Contains("is not set"));
        Assert.That(Outcome(() => TestServices.RequireShared(missing)), Is.TypeOf(expected).With.Message.Contains($"../shared/{missing} is absent"));
    }

    [Test]
    public void Present_prerequisites_pass_through()
    {
        Assert.DoesNotThrow(() => TestServices.RequireTool("sh", "dash"));
        Assert.DoesNotThrow(() => TestServices.RequireFile("/bin/sh", "dash"));
    }
}
