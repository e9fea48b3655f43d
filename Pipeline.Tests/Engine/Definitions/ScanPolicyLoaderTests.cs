using System.Text;
using Pipeline.Checkup.Policies;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Definitions;

public class ScanPolicyLoaderTests
{
    private static IEnumerable<string> ShippedPolicies() =>
        Directory.EnumerateFiles(Path.Combine(TestServices.RepoRoot, "pipelines", "policies")).Select(Path.GetFileName)!;

    [Test]
    public void There_is_at_least_one_shipped_policy() => Assert.That(ShippedPolicies(), Is.Not.Empty);

    [TestCaseSource(nameof(ShippedPolicies))]
    public void Every_file_in_pipelines_policies_is_a_valid_policy(string file)
    {
        var path = Path.Combine(TestServices.RepoRoot, "pipelines", "policies", file);
        var policy = ScanPolicyLoader.Load(path);
        Assert.That(policy.Name, Is.EqualTo(Path.GetFileNameWithoutExtension(file)));
        Assert.That(policy.Version, Is.EqualTo(ScanPolicy.VersionOf(File.ReadAllBytes(path))));
        Assert.That(policy.Profiles, Is.Not.Empty);
    }

    [Test]
    public void The_standard_policy_has_the_three_protection_profiles_with_their_overrides()
    {
        var p = ScanPolicyLoader.Load(Path.Combine(TestServices.RepoRoot, "pipelines", "policies", "standard.yaml"));
        Assert.That(p.Profiles.Keys, Is.EquivalentTo(new[] { "normal", "hoch", "sehr-hoch" }));
        Assert.That(p.Profile("normal").EncryptedContent, Is.EqualTo(PolicyAction.Quarantine));
        Assert.That(p.Profile("hoch").EncryptedContent, Is.EqualTo(PolicyAction.Reject));
        Assert.That(p.Profile("sehr-hoch").MaxNestingDepth, Is.EqualTo(2));
        Assert.That(p.Profile("sehr-hoch").ExceptionsAllowed, Is.False);
        Assert.That(p.Profile("sehr-hoch").FileTypeRules.Select(r => r.Name), Does.Contain("no-executables-in-docs").And.Contain("no-installers-or-foreign-binaries"));
        var e = Assert.Throws<Pipeline.Checkup.CheckupException>(() => p.Profile("mittel"));
        Assert.That(e!.Code, Is.EqualTo(PolicyErrors.UnknownProfile));
    }

    [Test]
    public void Archive_limits_and_the_uninspectable_rule_are_read_and_default_to_strict()
    {
        const string text = """
            name: p
            defaults:
              limits:
                maxUnpackedSize: 300MiB
                maxCompressionRatio: 50
              uninspectable: quarantine
            profiles:
              - name: normal
              - name: strict
                limits:
                  maxCompressionRatio: 10
                uninspectable: reject
            """;
        var p = ScanPolicyLoader.Parse("p.yaml", Encoding.UTF8.GetBytes(text), new ConfigErrors())!;
        Assert.That((p.Profile("normal").MaxUnpackedSize, p.Profile("normal").MaxCompressionRatio, p.Profile("normal").UninspectableArchives),
            Is.EqualTo((300L << 20, 50.0, PolicyAction.Quarantine)));
        Assert.That((p.Profile("strict").MaxUnpackedSize, p.Profile("strict").MaxCompressionRatio, p.Profile("strict").UninspectableArchives),
            Is.EqualTo((300L << 20, 10.0, PolicyAction.Reject)));
        var builtIn = ScanPolicy.BuiltIn.Profile("normal");
        Assert.That((builtIn.UninspectableArchives, builtIn.UnscannableLargeFiles), Is.EqualTo((PolicyAction.Reject, PolicyAction.Reject)));
    }

    [Test]
    public void A_bad_archive_limit_is_reported_with_its_line()
    {
        const string text = """
            name: p
            profiles:
              - name: normal
                limits:
                  maxCompressionRatio: 1
                uninspectable: maybe
            """;
        var errors = new ConfigErrors();
        Assert.That(ScanPolicyLoader.Parse("p.yaml", Encoding.UTF8.GetBytes(text), errors), Is.Null);
        Assert.That(errors.All.Select(e => (e.Line, e.Message.Contains("maxCompressionRatio", StringComparison.Ordinal) || e.Message.Contains("uninspectable", StringComparison.Ordinal))),
            Is.EqualTo(new[] { (5, true), (6, true) }));
    }

    [Test]
    public void The_version_changes_with_any_byte_of_the_file()
    {
        var text = "name: p\nprofiles:\n  - name: normal\n";
        var a = ScanPolicyLoader.Parse("p.yaml", Encoding.UTF8.GetBytes(text), new ConfigErrors())!;
        var b = ScanPolicyLoader.Parse("p.yaml", Encoding.UTF8.GetBytes(text + "# comment\n"), new ConfigErrors())!;
        Assert.That(a.Version, Does.StartWith("sha256:"));
        Assert.That(a.Version, Is.Not.EqualTo(b.Version));
    }

    [Test]
    public void A_policy_with_errors_reports_each_with_line_and_hint()
    {
        const string text = """
            name: strict
            profiles:
              - name: Normal
              - name: hoch
                limits:
                  maxFileSize: lots
                  onExceed: ignore
                scanner:
                  allowFilesOver2GiB: true
                fileTypes:
                  - name: r
                    paths: [/etc/**]
                    deny: [exe]
                encryptd: allow
            exceptions:
              - sha256: ABC
                detection: Pipeline.Test.EICAR.UNOFFICIAL
                justification: ok
                approvedBy: Jane Doe
            """;
        var errors = new ConfigErrors();
        Assert.That(ScanPolicyLoader.Parse("/p/standard.yaml", Encoding.UTF8.GetBytes(text), errors), Is.Null);
        var all = errors.All.Select(e => e.ToString()).ToList();
        TestContext.Out.WriteLine(string.Join("\n", all));
        Assert.Multiple(() =>
        {
            Assert.That(all, Has.Some.Contains(":1:").And.Contains("must equal the file name 'standard'"));
            Assert.That(all, Has.Some.Contains(":3:").And.Contains("profile name"));
            Assert.That(all, Has.Some.Contains(":6:").And.Contains("maxFileSize").And.Contains("64KiB"));
            Assert.That(all, Has.Some.Contains(":7:").And.Contains("must be one of reject, quarantine, allow"));
            Assert.That(all, Has.Some.Contains(":9:").And.Contains("has no effect unless 'largerThanStreamMaxLength: allow'"));
            Assert.That(all, Has.Some.Contains(":12:").And.Contains("not a valid path glob"));
            Assert.That(all, Has.Some.Contains(":13:").And.Contains("unknown file type 'exe'").And.Contains("hint: known: executable"));
            Assert.That(all, Has.Some.Contains(":14:").And.Contains("unknown key 'profiles[1].encryptd'").And.Contains("did you mean 'encrypted'"));
            Assert.That(all, Has.Some.Contains(":16:").And.Contains("SHA-256"));
            Assert.That(all, Has.Some.Contains("missing required key 'exceptions[0].expires'"));
            Assert.That(all, Has.Some.Contains("justification is too short"));
        });
    }

    [Test]
    public void Load_throws_a_configuration_exception_naming_the_file()
    {
        using var dir = new TempDir();
        var file = dir.Combine("x.yaml");
        File.WriteAllText(file, "name: x\nprofiles: []\n");
        var e = Assert.Throws<ConfigurationException>(() => ScanPolicyLoader.Load(file));
        Assert.That(e!.Code, Is.EqualTo("CFG-INVALID"));
        Assert.That(e.Message, Does.Contain(file + ":2:").And.Contain("must not be empty"));
    }

    [Test]
    public void Pipeline_definition_scan_block_is_read_and_checked()
    {
        var example = File.ReadAllText(Path.Combine(TestServices.RepoRoot, "pipelines", "fachverfahren-beispiel.yaml"))
            .Replace("  credentialsFile: /etc/pipeline/secrets/supplier-beispiel.cred\n", "");
        var file = Path.Combine(TestServices.RepoRoot, "pipelines", "fachverfahren-beispiel.yaml");

        var ok = new ConfigErrors();
        var def = PipelineDefinitionLoader.Parse(file, example + "\nscan:\n  policy: standard\n  profile: hoch\n", ok, checkEnvironment: true);
        Assert.That(ok.All, Is.Empty);
        Assert.That(def!.Scan, Is.EqualTo(new ScanSelection("standard", "hoch")));
        Assert.That(PipelineDefinitionLoader.Parse(file, example, new ConfigErrors(), checkEnvironment: false)!.Scan, Is.Null);

        var bad = new ConfigErrors();
        Assert.That(PipelineDefinitionLoader.Parse(file, example + "\nscan:\n  policy: nosuch\n", bad, checkEnvironment: true), Is.Null);
        Assert.That(bad.All.Select(e => e.Message), Has.Some.Contains("missing required key 'scan.profile'"));
        Assert.That(bad.All.Select(e => e.Message), Has.Some.Contains("nosuch.yaml' does not exist"));

        var noProfile = new ConfigErrors();
        Assert.That(PipelineDefinitionLoader.Parse(file, example + "\nscan:\n  policy: standard\n  profile: mittel\n", noProfile, checkEnvironment: true), Is.Null);
        Assert.That(noProfile.All.Single().ToString(), Does.Contain("scan policy 'standard' has no profile 'mittel'").And.Contain("hint: its profiles: normal, hoch, sehr-hoch"));
    }
}
