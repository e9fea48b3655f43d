using Pipeline.Engine.Hosting;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;

namespace Pipeline.Tests.Support;

/// <summary>
/// Everything an end-to-end test needs against the real services: a fresh ledger database, a
/// base image pushed by our own code, a certified signer key, and per test a supplier repository
/// on the git server, an internal repository, an engine configuration and a pipeline definition.
/// </summary>
public sealed class DeliveryHarness : IAsyncDisposable
{
    private DeliveryHarness(TempDir dir, TestDatabase db, string baseRef, SshKey signer)
    {
        Dir = dir;
        Database = db;
        BaseImage = baseRef;
        Signer = signer;
    }

    public TempDir Dir { get; }
    public TestDatabase Database { get; }
    public string BaseImage { get; }
    public SshKey Signer { get; }
    public string Registry => TestServices.Require("PIPELINE_REGISTRY");

    public static async Task<DeliveryHarness> CreateAsync()
    {
        var registry = TestServices.Require("PIPELINE_REGISTRY");
        TestServices.Require("PIPELINE_CLAMD_TCP");
        TestServices.Require("PIPELINE_GIT_HTTP");
        var dir = new TempDir("pipeline-e2e-");
        var db = await TestDatabase.CreateAsync();

        // A base image built and pushed by our own code (a tiny root file system).
        var rootfs = dir.Combine("rootfs");
        Directory.CreateDirectory(Path.Combine(rootfs, "etc"));
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "os-release"), "NAME=pipeline-test-base\n");
        var store = new BlobStore(dir.Combine("base-blobs"));
        var image = await ScratchBaseBuilder.BuildAsync(rootfs, store, new ImageSettings { Created = DateTimeOffset.UnixEpoch }, DateTimeOffset.UnixEpoch);
        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + registry)));
        var repo = "pipeline-tests/base";
        var pushed = await client.PushImageAsync(repo, "e2e", image, store);
        var signer = SupplierRepo.NewKey(dir.Combine("keys"), "certified");
        return new DeliveryHarness(dir, db, $"{repo}@{pushed.ManifestDigest}", signer);
    }

    /// <summary>One supplier application: its repositories on the server and its engine configuration.</summary>
    public Scenario NewScenario(string? name = null)
    {
        name ??= "e2e-" + Guid.NewGuid().ToString("N")[..10];
        var root = Dir.Combine(name);
        Directory.CreateDirectory(Path.Combine(root, "pipelines"));
        var gitRoot = TestServices.Require("PIPELINE_GIT_ROOT");
        var http = TestServices.Require("PIPELINE_GIT_HTTP");
        var user = TestServices.Require("PIPELINE_GIT_USER");
        var password = File.ReadAllText(TestServices.Require("PIPELINE_GIT_PASSWORD_FILE")).Trim();
        var cred = Path.Combine(root, "git.cred");
        File.WriteAllText(cred, $"{user}:{password}\n");
        var supplierBare = Path.Combine(gitRoot, "supplier", name + ".git");
        var internalBare = Path.Combine(gitRoot, "internal", "e2e", name + ".git");
        Shell.Run("git", ["init", "-q", "--bare", supplierBare]).EnsureSuccess("init supplier");
        Shell.Run("git", ["init", "-q", "--bare", internalBare]).EnsureSuccess("init internal");

        var config = WriteEngineConfig(root, Database);
        var supplier = new SupplierRepo(Path.Combine(root, "supplier-work"));
        return new Scenario(this, name, root, config, supplier, supplierBare, internalBare, $"{http}/supplier/{name}.git");
    }

    /// <summary>
    /// The same pipeline (name, supplier repository, definition) run by a second, independent engine:
    /// its own folder, configuration and ledger <paramref name="database"/>. The internal repository is
    /// emptied so the delivery is published afresh, exactly as on a new installation.
    /// </summary>
    public Scenario SecondInstallation(Scenario s, TestDatabase database)
    {
        var root = Dir.Combine(s.Name + "-second-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(Path.Combine(root, "pipelines"));
        File.Copy(Path.Combine(s.Root, "git.cred"), Path.Combine(root, "git.cred"));
        File.Copy(Path.Combine(s.Root, "pipelines", s.Name + ".yaml"), Path.Combine(root, "pipelines", s.Name + ".yaml"));
        Directory.Delete(s.InternalBare, recursive: true);
        Shell.Run("git", ["init", "-q", "--bare", s.InternalBare]).EnsureSuccess("init internal");
        return s with { Root = root, ConfigPath = WriteEngineConfig(root, database) };
    }

    private string WriteEngineConfig(string root, TestDatabase database)
    {
        var config = Path.Combine(root, "engine.yaml");
        File.WriteAllText(config, $"""
            pipelines: pipelines
            workDir: work
            database:
              connectionString: "{database.ConnectionString}"
            clamd:
              endpoints: [tcp://{TestServices.Require("PIPELINE_CLAMD_TCP")}]
              parallelism: 2
              configFile: {SharedClamd.ConfigFile}
            registry:
              url: http://{Registry}
            internalGit:
              url: {TestServices.Require("PIPELINE_GIT_HTTP")}/internal
              credentialsFile: git.cred
            """);
        return config;
    }

    public async ValueTask DisposeAsync()
    {
        await Database.DisposeAsync();
        Dir.Dispose();
    }
}

public sealed record Scenario(DeliveryHarness Harness, string Name, string Root, string ConfigPath, SupplierRepo Supplier, string SupplierBare, string InternalBare, string SupplierUrl)
{
    public string RegistryRepository => $"apps/{Name}/app";

    /// <summary>Writes the pipeline definition; <paramref name="signerKey"/> defaults to the certified key.</summary>
    public void WriteDefinition(string? signerKey = null, string? validUntil = null, string? extraAllowedBase = null)
    {
        var signers = $"""
              - name: Certified Release Key
                organisation: Test Supplier GmbH
                sshKey: {signerKey ?? Harness.Signer.PublicKey}
                validFrom: 2020-01-01
            {(validUntil is null ? "" : "    validUntil: " + validUntil)}
            """;
        WriteDefinitionWith(signers, extraAllowedBase: extraAllowedBase);
    }

    /// <summary>Writes the pipeline definition with the given <c>signers:</c> items (YAML, indented by two) and extra top-level YAML.</summary>
    public void WriteDefinitionWith(string signersYaml, string extraYaml = "", string? extraAllowedBase = null)
    {
        File.WriteAllText(Path.Combine(Root, "pipelines", Name + ".yaml"), $"""
            name: {Name}
            supplier: Test Supplier GmbH
            source:
              url: {SupplierUrl}
              credentialsFile: ../git.cred
              tagPattern: '^v\d+\.\d+\.\d+$'
            signers:
            {signersYaml.TrimEnd()}
            publish:
              repository: e2e/{Name}
            images:
              repositoryPrefix: apps/{Name}
              allowedBaseImages:
                - {Harness.BaseImage}
            {(extraAllowedBase is null ? "" : "    - " + extraAllowedBase)}
            {extraYaml.TrimEnd()}
            """);
    }

    /// <summary>A good delivery: a binary, docs, delivery.yaml and SHA256SUMS, committed.</summary>
    public void WriteGoodDelivery(string version = "1.0.0", string? baseImage = null)
    {
        Supplier.Write("bin/app", $"#!/bin/sh\necho app {version}\n");
        File.SetUnixFileMode(Path.Combine(Supplier.WorkTree, "bin", "app"), (UnixFileMode)0b111_101_101);
        Supplier.Write("docs/README.md", $"# App {version}\n");
        Supplier.Write("delivery.yaml", $"""
            version: 1
            images:
              - name: app
                base: {baseImage ?? Harness.BaseImage}
                files:
                  - from: bin
                    to: /opt/app
                entrypoint: [/opt/app/app]
                user: "10001:10001"
                ports: [8080]
            """);
        Supplier.WriteChecksums();
    }

    public void Publish(string tag, SshKey? key = null)
    {
        Supplier.Commit("release " + tag);
        Supplier.SignedTag(tag, key ?? Harness.Signer, "Release " + tag);
        Supplier.PushTo(SupplierBare);
    }

    public async Task<RunReport> RunAsync(Serilog.ILogger? log = null)
    {
        await using var engine = await PipelineEngine.StartAsync(ConfigPath, TimeProvider.System, log ?? Serilog.Core.Logger.None, default);
        return await engine.Runner.RunOnceAsync(engine.Pipeline(Name), default);
    }
}
