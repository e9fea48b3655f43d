using Pipeline.Checkup;
using Pipeline.Checkup.Scanning;
using Pipeline.Engine;
using Pipeline.Engine.Runs;
using Pipeline.Registry;

namespace Pipeline.Tests.Engine.Runs;

public class FailureClassTests
{
    private static IEnumerable<TestCaseData> Infrastructure()
    {
        yield return new TestCaseData(new ClamdException(ClamdErrors.NoHealthyEndpoint, "no clamd", true)).SetName("clamd down (CHK-AV-005)");
        yield return new TestCaseData(new ClamdException(ClamdErrors.Protocol, "clamd answered garbage", false)).SetName("clamd protocol error");
        yield return new TestCaseData(new RegistryException("REG-NET-001", "refused", isTransient: true)).SetName("registry unreachable");
        yield return new TestCaseData(new RegistryException("REG-BLOB-005", "HTTP 503", isTransient: true, statusCode: 503)).SetName("registry 5xx");
        yield return new TestCaseData(new RegistryException("REG-AUTH-001", "HTTP 401", statusCode: 401)).SetName("registry credentials");
        yield return new TestCaseData(new PipelineException("PUBLISH-PUSH", "unexpected http status code: 500")).SetName("VCS B 500");
        yield return new TestCaseData(new IOException("No space left on device", 28)).SetName("ENOSPC");
        yield return new TestCaseData(new PipelineException("ENG-STAGE-ORDER", "push needs the scan's verdict before any blob is uploaded")).SetName("step order broken by the engine");
        yield return new TestCaseData(new RegistryException("REG-LAYER-001", "writing the layer failed", inner: new IOException("No space left on device", 28))).SetName("ENOSPC wrapped");
        yield return new TestCaseData(new Npgsql.NpgsqlException("connection refused")).SetName("database");
    }

    private static IEnumerable<TestCaseData> Verdicts()
    {
        yield return new TestCaseData(new CheckupException("CHK-SIG-003", "bad signature")).SetName("bad signature");
        yield return new TestCaseData(new PipelineException("PUBLISH-REJECTED", "the internal repository refused the tag")).SetName("VCS B refused the tag");
        yield return new TestCaseData(new PipelineException("SCAN-CHANGED", "tampered")).SetName("tampered");
        yield return new TestCaseData(new RegistryException("REG-LAYER-004", "file too large")).SetName("layer content");
        yield return new TestCaseData(new IOException("Permission denied", 13)).SetName("other IO error");
    }

    [TestCaseSource(nameof(Infrastructure))]
    public void An_outage_of_ours_is_infrastructure(Exception e) => Assert.That(FailureClass.Classify(e), Is.EqualTo(FailureKind.Infrastructure));

    [TestCaseSource(nameof(Verdicts))]
    public void A_finding_about_the_delivery_is_a_verdict(Exception e) => Assert.That(FailureClass.Classify(e), Is.EqualTo(FailureKind.Verdict));

    [Test]
    public void A_full_disk_is_recorded_as_ENG_DISK_FULL_even_when_wrapped_and_other_failures_keep_their_code()
    {
        var wrapped = new RegistryException("REG-LAYER-001", "writing the layer failed", inner: new IOException("No space left on device", 28));
        Assert.That(ErrorCodes.Describe(new IOException("No space left on device", 28)).Code, Is.EqualTo("ENG-DISK-FULL"));
        var (code, message) = ErrorCodes.Describe(wrapped);
        Assert.That(code, Is.EqualTo("ENG-DISK-FULL"));
        Assert.That(message, Does.Contain("No space left on device").And.Contain("retried"));
        Assert.That(ErrorCodes.Describe(new IOException("broken pipe", 32)).Code, Is.EqualTo("ENG-INTERNAL"));
        Assert.That(ErrorCodes.Describe(new RegistryException("REG-NET-001", "refused", isTransient: true)).Code, Is.EqualTo("REG-NET-001"));
    }

    [TestCase(1, 60)]
    [TestCase(2, 120)]
    [TestCase(3, 240)]
    [TestCase(10, 3600)]
    public void Backoff_doubles_up_to_its_maximum(int attempt, int seconds) =>
        Assert.That(RetryBackoff.Default.Delay(attempt), Is.EqualTo(TimeSpan.FromSeconds(seconds)));
}
