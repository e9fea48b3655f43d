using System.Text.Json.Nodes;
using Pipeline.Engine.Cli;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Definitions;

/// <summary>
/// <c>pipeline check</c> (and the daemon's start) validates each Sigstore pipeline's trusted root as the
/// verify stage will load it, and reports its problems at the pipeline file's <c>trustedRoot</c> line
/// together with every other error, instead of failing on the first delivery.
/// </summary>
public class SigstoreRootCheckTests
{
    private const string Case = "vectors/sigstore-conformance/bundle-verify/trust-root-tlog-validity-end-inclusive";

    private static string Definition(string name, string trustedRoot, string schedule) => $"""
        name: {name}
        supplier: S
        schedule: "{schedule}"
        source:
          url: https://git.supplier.example/s/app.git
          tagPattern: '^v\d+\.\d+\.\d+$'
        signers:
          - name: A
            organisation: O
            sshKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOIQ4qsOgwkkrXhsOS3DPgRlPFuLwsqkDQUnbmFyjGbe a@example
        checksums:
          manifest: SHA256SUMS
          signature: sigstore
          sigstore:
            identity: https://github.com/s/app/.github/workflows/release.yml@refs/heads/main
            issuer: https://token.actions.githubusercontent.com
            trustedRoot: {trustedRoot}
        publish:
          repository: s/app
        images:
          repositoryPrefix: apps/s
          allowedBaseImages:
            - base/busybox@sha256:3f1e2d6f7a0b6bd7a4c8e5f0d9b2a1c3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9
        """;

    [Test]
    public void An_incomplete_trusted_root_is_reported_at_its_line_with_every_other_error()
    {
        using var dir = new TempDir("sigstore-root-check-");
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(TestServices.RequireShared(Case), "trusted_root.json")))!.AsObject();
        File.WriteAllText(dir.Combine("good_root.json"), root.ToJsonString());
        root["certificateAuthorities"]![0]!.AsObject().Remove("validFor");
        root["tlogs"]![0]!.AsObject().Remove("baseUrl");
        File.WriteAllText(dir.Combine("incomplete_root.json"), root.ToJsonString());
        Directory.CreateDirectory(dir.Combine("pipelines"));
        var broken = dir.Combine("pipelines", "broken.yaml");
        File.WriteAllText(broken, Definition("broken", "../incomplete_root.json", "0 0/15 * * * ?"));
        // Another pipeline, with a good root but a schedule that is not a cron expression: reported in the same run.
        var other = dir.Combine("pipelines", "other.yaml");
        File.WriteAllText(other, Definition("other", "../good_root.json", "every day"));

        var e = Assert.Throws<ConfigurationException>(() => PipelineDefinitionLoader.LoadFolder(dir.Combine("pipelines"), checkEnvironment: true))!;
        var rootError = e.Errors.Single(x => x.File == broken);
        Assert.That(rootError.Line, Is.EqualTo(17), "the trustedRoot line of the pipeline file");
        Assert.That(rootError.Message, Does.StartWith("CFG-SIGSTORE-ROOT: ").And.Contain("SIG-SIGSTORE-TRUSTED-ROOT-MALFORMED")
            .And.Contain("incomplete_root.json").And.Contain("certificateAuthorities[0].validFor is missing").And.Contain(".baseUrl is missing"));
        Assert.That(e.Errors.Where(x => x.File == other).Select(x => x.Line), Is.EqualTo(new[] { 3 }), "the other pipeline's schedule, in the same report");

        // Only a schema check (no environment): the root is not read.
        Assert.That(PipelineDefinitionLoader.Load(broken, checkEnvironment: false).Name, Is.EqualTo("broken"));

        // The CLI prints both, exit 2.
        File.WriteAllText(dir.Combine("engine.yaml"), $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "Host=127.0.0.1;Username=x;Database=y"
            clamd:
              endpoints: [tcp://127.0.0.1:3310]
              configFile: {SharedClamd.ConfigFile}
            registry:
              url: http://127.0.0.1:5000
            internalGit:
              url: http://127.0.0.1:8088/git/internal
            """);
        var (o, err) = (new StringWriter(), new StringWriter());
        var rc = PipelineCli.RunAsync(["check", "--config", dir.Combine("engine.yaml")], o, err).GetAwaiter().GetResult();
        Assert.That(rc, Is.EqualTo(2), o.ToString());
        Assert.That(err.ToString(), Does.Contain($"{broken}:17:").And.Contain("CFG-SIGSTORE-ROOT").And.Contain($"{other}:3:"));
    }

    [Test]
    public void A_complete_trusted_root_passes()
    {
        using var dir = new TempDir("sigstore-root-ok-");
        File.Copy(Path.Combine(TestServices.RequireShared(Case), "trusted_root.json"), dir.Combine("root.json"));
        var file = dir.Combine("app.yaml");
        File.WriteAllText(file, Definition("app", "root.json", "0 0/15 * * * ?"));
        Assert.That(PipelineDefinitionLoader.Load(file, checkEnvironment: true).Checksums.Sigstore!.TrustedRootFile, Is.EqualTo(dir.Combine("root.json")));
    }
}
