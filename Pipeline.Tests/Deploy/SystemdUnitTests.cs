using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Deploy;

/// <summary>
/// The shipped systemd units, checked by systemd's own tools (PID 1 is not systemd here: the units are checked, not
/// run). Their exposure scores may never get worse than the README says.
/// </summary>
public class SystemdUnitTests
{
    private static readonly string Folder = Path.Combine(TestServices.RepoRoot, "deploy", "systemd");

    private static IEnumerable<string> Units() =>
        Directory.GetFiles(Path.Combine(TestServices.RepoRoot, "deploy", "systemd"), "*.service").Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal);

    [Test]
    public void Both_units_are_shipped() =>
        Assert.That(Units(), Is.EquivalentTo(new[] { "pipeline.service", "pipeline-portal.service" }));

    [TestCaseSource(nameof(Units))]
    public void The_unit_has_the_required_hardening(string unit)
    {
        var lines = File.ReadAllLines(Path.Combine(Folder, unit)).Select(l => l.Trim()).ToHashSet(StringComparer.Ordinal);
        foreach (var required in new[]
                 {
                     "Type=notify", "User=pipeline", "NoNewPrivileges=yes", "CapabilityBoundingSet=", "ProtectSystem=strict", "PrivateTmp=yes",
                     "SystemCallFilter=@system-service", "ReadWritePaths=/var/lib/pipeline", "ProtectHome=yes", "RestrictNamespaces=yes", "RestrictSUIDSGID=yes",
                 })
            Assert.That(lines, Does.Contain(required), unit);
        Assert.That(lines.Where(l => l.StartsWith("ReadWritePaths=", StringComparison.Ordinal)), Is.EqualTo(new[] { "ReadWritePaths=/var/lib/pipeline" }), "only the work folder is writable");
        Assert.That(lines.Where(l => l.StartsWith("LoadCredential=", StringComparison.Ordinal)), Is.Not.Empty, "secrets come through LoadCredential");
        Assert.That(lines.Where(l => l.StartsWith("Environment=", StringComparison.Ordinal)), Has.None.Contains("PASSWORD").IgnoreCase, "no secret in the environment");
    }

    [TestCaseSource(nameof(Units))]
    public void The_exposure_score_is_at_most_what_the_README_states(string unit)
    {
        Assert.That(Shell.Exists("systemd-analyze"), Is.True, "systemd-analyze is needed (apt-get install systemd)");
        var readme = File.ReadAllText(Path.Combine(TestServices.RepoRoot, "README.md"));
        var stated = Regex.Match(readme, $@"`deploy/systemd/{Regex.Escape(unit)}`\s*\|\s*(\d+\.\d+)");
        Assert.That(stated.Success, Is.True, $"the README's operations section states the exposure score of {unit} (| `deploy/systemd/{unit}` | N.N |)");

        var r = Shell.Run("systemd-analyze", ["security", "--offline=true", "--no-pager", Path.Combine(Folder, unit)]);
        var score = Regex.Match(r.Stdout + r.Stderr, @"Overall exposure level for \S+: (\d+\.\d+)");
        Assert.That(score.Success, Is.True, r.Stdout + r.Stderr);
        var actual = double.Parse(score.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.That(actual, Is.LessThanOrEqualTo(double.Parse(stated.Groups[1].Value, CultureInfo.InvariantCulture)),
            $"{unit} got more exposed than the README says:\n{r.Stdout}");
        Assert.That(actual, Is.LessThan(2.0), "an exposure above 2 is no longer 'OK' for systemd");
    }

    [TestCaseSource(nameof(Units))]
    public void Systemd_verifies_the_unit_without_a_warning(string unit)
    {
        // verify insists that ExecStart's program exists: check a copy that points at the program this build made.
        using var dir = new TempDir("systemd-verify-");
        var engine = Path.Combine(AppContext.BaseDirectory, "pipeline");
        Assert.That(File.Exists(engine), Is.True, engine);
        var copy = dir.Combine(unit);
        File.WriteAllText(copy, File.ReadAllText(Path.Combine(Folder, unit)).Replace("/opt/pipeline/pipeline", engine, StringComparison.Ordinal));
        var r = Shell.Run("systemd-analyze", ["verify", "--no-pager", copy]);
        Assert.That(r.ExitCode, Is.Zero, r.Stderr);
        Assert.That((r.Stdout + r.Stderr).Trim(), Is.Empty, "unknown keys and bad values are only warnings: none may appear");
    }
}
