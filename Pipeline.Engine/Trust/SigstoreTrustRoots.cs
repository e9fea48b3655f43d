using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Engine.Trust;

/// <summary>Where the Sigstore public-good production trusted root is installed; it is never fetched at run time.</summary>
public static class SigstoreTrustRoots
{
    /// <summary>Environment variable naming the default trusted root JSON.</summary>
    public const string DefaultRootEnv = "PIPELINE_SIGSTORE_DEFAULT_ROOT";

    /// <summary>
    /// <c>$PIPELINE_SIGSTORE_DEFAULT_ROOT</c>, else <c>sigstore/trusted_root.json</c> beside the
    /// executable, else <c>/usr/share/pipeline/sigstore/trusted_root.json</c> (as installed by
    /// <c>scripts/install-sigstore-root.sh</c> from the npm package @sigstore/tuf); null when none exists.
    /// </summary>
    public static string? DefaultTrustedRoot()
    {
        if (Environment.GetEnvironmentVariable(DefaultRootEnv) is { Length: > 0 } env) return env;
        foreach (var candidate in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "sigstore", "trusted_root.json"),
                     "/usr/share/pipeline/sigstore/trusted_root.json",
                 })
        {
            if (File.Exists(candidate)) return candidate;
        }

        return null;
    }

    /// <summary>Code of an unusable trusted root: the operator's configuration, never a finding about a delivery.</summary>
    public const string RootErrorCode = "CFG-SIGSTORE-ROOT";

    /// <summary>
    /// Reads and validates the trusted root at <paramref name="path"/>. A missing, unreadable or incomplete
    /// root is the operator's problem, so it throws <see cref="PipelineException"/> <c>CFG-SIGSTORE-ROOT</c>
    /// naming the file and every bad field (never the supplier's <c>SIG-SIGSTORE-*</c> rejection).
    /// </summary>
    public static TrustedRoot Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            return TrustedRoot.Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PipelineException(RootErrorCode, $"the Sigstore trusted root '{path}' cannot be read: {e.Message}", e);
        }
        catch (CheckupException e)
        {
            throw new PipelineException(RootErrorCode, $"the Sigstore trusted root '{path}' is not usable ({e.Code}): {e.Message}", e);
        }
    }
}
