using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline verify-bundle</c>: offline Sigstore bundle verification with the sigstore-conformance
/// argument shape. Exit 0 = verified, 1 = verification failed (code + message on stderr), 2 = usage error.
/// </summary>
public static class VerifyBundleCommand
{
    /// <summary>Environment variable naming the default trusted root JSON when --trusted-root is absent.</summary>
    public const string DefaultRootEnv = Trust.SigstoreTrustRoots.DefaultRootEnv;

    private const string Usage =
        "usage: pipeline verify-bundle --bundle FILE (--certificate-identity ID --certificate-oidc-issuer URL | --key KEY.pem) [--trusted-root FILE] FILE_OR_SHA256_DIGEST";

    /// <summary>Runs the command; <paramref name="args"/> excludes the leading "verify-bundle".</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        string? bundlePath = null, identity = null, issuer = null, keyPath = null, rootPath = null, subject = null;
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a is "--bundle" or "--certificate-identity" or "--certificate-oidc-issuer" or "--key" or "--trusted-root")
            {
                if (i + 1 >= args.Length) return UsageError(stderr, $"{a} needs a value.");
                var v = args[++i];
                switch (a)
                {
                    case "--bundle": bundlePath = v; break;
                    case "--certificate-identity": identity = v; break;
                    case "--certificate-oidc-issuer": issuer = v; break;
                    case "--key": keyPath = v; break;
                    default: rootPath = v; break;
                }
            }
            else if (a.StartsWith("--", StringComparison.Ordinal)) return UsageError(stderr, $"unknown option {a}.");
            else if (subject is null) subject = a;
            else return UsageError(stderr, $"unexpected argument {a}.");
        }
        if (bundlePath is null || subject is null) return UsageError(stderr, "--bundle and the artifact (file or sha256:<hex>) are required.");
        if (keyPath is not null && (identity is not null || issuer is not null)) return UsageError(stderr, "--key cannot be combined with --certificate-identity/--certificate-oidc-issuer.");
        if (keyPath is null && (identity is null || issuer is null)) return UsageError(stderr, "give --certificate-identity and --certificate-oidc-issuer, or --key.");
        rootPath ??= Trust.SigstoreTrustRoots.DefaultTrustedRoot();
        if (string.IsNullOrEmpty(rootPath))
            return UsageError(stderr, $"no --trusted-root given, {DefaultRootEnv} is not set and no installed production root was found (scripts/install-sigstore-root.sh installs it).");

        try
        {
            var policy = keyPath is not null ? VerificationPolicy.ForPublicKey(ReadText(keyPath, "key")) : VerificationPolicy.ForIdentity(identity!, issuer!);
            var root = TrustedRoot.Parse(ReadText(rootPath, "trusted root"));
            ArtifactInput artifact;
            if (subject.StartsWith("sha256:", StringComparison.Ordinal))
            {
                try { artifact = ArtifactInput.FromDigest(subject); }
                catch (ArgumentException ex) { return UsageError(stderr, ex.Message); }
            }
            else
            {
                try
                {
                    using var fs = File.OpenRead(subject);
                    artifact = fs.Length <= 64L * 1024 * 1024 ? ArtifactInput.FromBytes(ReadAll(fs)) : ArtifactInput.FromStream(fs);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    return UsageError(stderr, $"cannot read artifact {subject}: {ex.Message}");
                }
            }
            var bundle = SigstoreBundle.Parse(ReadText(bundlePath, "bundle"));
            var result = SigstoreVerifier.Verify(bundle, artifact, policy, root);
            stdout.WriteLine("OK: bundle verified");
            if (result.SignerIdentity is not null) stdout.WriteLine($"  identity: {result.SignerIdentity} (issuer {result.Issuer})");
            foreach (var c in result.Checks) stdout.WriteLine($"  {c.Name}: {c.Evidence}");
            return 0;
        }
        catch (CheckupException ex)
        {
            stderr.WriteLine($"{ex.Code}: {ex.Message}");
            return 1;
        }
        catch (FileNotFoundException ex)
        {
            return UsageError(stderr, ex.Message);
        }
    }

    private static string ReadText(string path, string what)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > 32 * 1024 * 1024)
                throw new CheckupException(SigstoreCodes.BundleMalformed, $"The {what} file {path} is larger than 32 MiB.");
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FileNotFoundException($"cannot read {what} {path}: {ex.Message}", path, ex);
        }
    }

    private static byte[] ReadAll(Stream s)
    {
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    private static int UsageError(TextWriter stderr, string message)
    {
        stderr.WriteLine($"error: {message}");
        stderr.WriteLine(Usage);
        return 2;
    }
}
