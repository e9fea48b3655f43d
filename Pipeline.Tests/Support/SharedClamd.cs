using Pipeline.Checkup.Scanning;

namespace Pipeline.Tests.Support;

/// <summary>
/// The configuration the shared clamd runs with (written by <c>scripts/services.sh</c>) and the limits read
/// from it, exactly as the engine reads them: tests never assume what clamd scans.
/// </summary>
public static class SharedClamd
{
    /// <summary>The shared clamd's clamd.conf (<c>PIPELINE_CLAMD_CONFIG</c>, else under <c>PIPELINE_STATE_DIR</c>).</summary>
    public static string ConfigFile
    {
        get
        {
            var file = TestServices.Get("PIPELINE_CLAMD_CONFIG")
                       ?? Path.Combine(TestServices.Require("PIPELINE_STATE_DIR"), "clamd", "clamd.conf");
            if (!File.Exists(file)) Assert.Fail($"the shared clamd's configuration {file} does not exist; start the services with scripts/services.sh start");
            return file;
        }
    }

    /// <summary>The shared clamd's limits, parsed from <see cref="ConfigFile"/>.</summary>
    public static ClamdLimits Limits
    {
        get
        {
            var problems = new List<ClamdLimits.Problem>();
            return ClamdLimits.Load(ConfigFile, problems)
                   ?? throw new AssertionException("cannot read the shared clamd's limits: " + string.Join("; ", problems.Select(p => $"line {p.Line}: {p.Message}")));
        }
    }
}
