namespace Pipeline.Tests.Support;

/// <summary>
/// Where the real services started by <c>scripts/services.sh</c> listen. The script writes
/// <c>.state/services.env</c> (KEY=VALUE lines); <c>scripts/test.sh</c> exports them. A test that
/// needs a service calls <see cref="Require"/>: when the service is not configured it fails under
/// <c>PIPELINE_REQUIRE_SERVICES=1</c> (as in CI) and is ignored with a clear message otherwise.
/// Every test that cannot run for want of a service, tool, file or privilege goes through
/// <see cref="Unavailable(string)"/>: nothing may skip silently where the services are required.
/// </summary>
public static class TestServices
{
    private static readonly Lazy<IReadOnlyDictionary<string, string>> Values = new(Load);

    /// <summary>The repository root (the folder holding Pipeline.sln).</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>The shared material beside the checkout (<c>../shared</c>), or null when absent.</summary>
    public static string? SharedDir
    {
        get
        {
            var dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
            return Directory.Exists(dir) ? dir : null;
        }
    }

    public static string? Get(string key) =>
        Environment.GetEnvironmentVariable(key) is { Length: > 0 } v ? v
        : Values.Value.TryGetValue(key, out var f) ? f : null;

    /// <summary>True when <c>PIPELINE_REQUIRE_SERVICES=1</c> (CI, <c>scripts/test.sh</c>): a missing prerequisite fails the test.</summary>
    public static bool ServicesRequired => Environment.GetEnvironmentVariable("PIPELINE_REQUIRE_SERVICES") == "1";

    /// <summary>Returns the value of a service setting, or fails/ignores the test when it is missing.</summary>
    public static string Require(string key) =>
        Get(key) ?? throw Unavailable($"{key} is not set: start the services with scripts/services.sh start (or run scripts/test.sh)");

    /// <summary>Fails/ignores the test unless <paramref name="tool"/> is on PATH.</summary>
    public static void RequireTool(string tool, string package)
    {
        if (!Shell.Exists(tool)) throw Unavailable($"{tool} is not installed (Debian package {package}; scripts/services.sh installs it)");
    }

    /// <summary>Fails/ignores the test unless <paramref name="path"/> exists.</summary>
    public static void RequireFile(string path, string package)
    {
        if (!File.Exists(path)) throw Unavailable($"{path} is absent (Debian package {package}; scripts/services.sh installs it)");
    }

    /// <summary>Returns a path under ../shared, or fails/ignores the test with a clear message when it is absent.</summary>
    public static string RequireShared(string relative)
    {
        var shared = SharedDir;
        var path = shared is null ? null : Path.Combine(shared, relative);
        if (path is null || (!File.Exists(path) && !Directory.Exists(path)))
            throw Unavailable($"../shared/{relative} is absent beside the checkout; this test reads it from there");
        return path;
    }

    /// <summary>
    /// Ends a test that cannot run here: it FAILS with <paramref name="message"/> under
    /// <c>PIPELINE_REQUIRE_SERVICES=1</c> and is ignored otherwise. Never returns (the return type
    /// lets callers write <c>throw TestServices.Unavailable(...)</c>).
    /// </summary>
    public static Exception Unavailable(string message) => Unavailable(message, ServicesRequired);

    internal static Exception Unavailable(string message, bool servicesRequired)
    {
        if (servicesRequired) Assert.Fail($"{message} (PIPELINE_REQUIRE_SERVICES=1: a missing prerequisite is a failure, not a skip)");
        Assert.Ignore(message);
        return new InvalidOperationException(message); // not reached: both assertions throw
    }

    private static IReadOnlyDictionary<string, string> Load()
    {
        var file = Environment.GetEnvironmentVariable("PIPELINE_SERVICES_ENV")
                   ?? Path.Combine(RepoRoot, ".state", "services.env");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(file)) return result;
        foreach (var raw in File.ReadAllLines(file))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith("export ", StringComparison.Ordinal)) line = line[7..];
            var eq = line.IndexOf('=');
            if (eq <= 0) continue;
            result[line[..eq]] = line[(eq + 1)..].Trim('"', '\'');
        }
        return result;
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Pipeline.sln not found above " + AppContext.BaseDirectory);
    }
}
