namespace Pipeline.Tests.Support;

/// <summary>
/// Signs an arbitrary file with the offline Sigstore mock (../shared/tools/sigstore-mock): a copy
/// of the tool is installed once per test run, and its generator is pointed at our artifact.
/// </summary>
public sealed class SigstoreMockSigner
{
    private static readonly Lazy<string?> Installed = new(Install);
    private readonly string _dir;

    private SigstoreMockSigner(string dir) => _dir = dir;

    public sealed record Signed(string Bundle, string TrustedRoot, string Identity, string Issuer);

    /// <summary>Returns a signer, or ignores/fails the test (per PIPELINE_REQUIRE_SERVICES) when node/npm or shared/ are missing.</summary>
    public static SigstoreMockSigner? TryCreate()
    {
        TestServices.RequireShared("tools/sigstore-mock/gen.js");
        var dir = Installed.Value;
        if (dir is null) throw TestServices.Unavailable("node/npm could not install ../shared/tools/sigstore-mock; Sigstore bundles cannot be generated");
        return new SigstoreMockSigner(dir);
    }

    public Signed Sign(string artifact, string outDir)
    {
        Shell.Run("node", ["gen-file.js", outDir], _dir, env: new Dictionary<string, string> { ["PIPELINE_ARTIFACT"] = artifact }, timeout: TimeSpan.FromMinutes(2))
            .EnsureSuccess("node gen-file.js");
        return new Signed(Path.Combine(outDir, "msgsig.sigstore.json"), Path.Combine(outDir, "trusted_root.json"),
            File.ReadAllText(Path.Combine(outDir, "identity")).Trim(), File.ReadAllText(Path.Combine(outDir, "issuer")).Trim());
    }

    private static string? Install()
    {
        if (!Shell.Exists("node") || !Shell.Exists("npm")) return null;
        var source = TestServices.RequireShared("tools/sigstore-mock");
        var dir = Directory.CreateTempSubdirectory("pipeline-sigstore-mock-").FullName;
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var install = Shell.Run("npm", ["install", "--no-audit", "--no-fund", "--silent"], dir, timeout: TimeSpan.FromMinutes(5));
        if (install.ExitCode != 0) return null;
        // The generator signs a fixed text; this copy signs the file named by PIPELINE_ARTIFACT.
        var gen = File.ReadAllText(Path.Combine(dir, "gen.js"));
        const string fixedArtifact = "Buffer.from('hello, offline sigstore\\n')";
        if (!gen.Contains(fixedArtifact, StringComparison.Ordinal)) return null;
        File.WriteAllText(Path.Combine(dir, "gen-file.js"), gen.Replace(fixedArtifact, "fs.readFileSync(process.env.PIPELINE_ARTIFACT)", StringComparison.Ordinal));
        return dir;
    }
}
