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
}
