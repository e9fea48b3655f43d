using System.Text;

namespace Pipeline.Engine.Vcs;

/// <summary>
/// Pushes one ref from a bare repository with the real <c>git</c> binary. git sends the objects of
/// the mirror's received pack as they are (deltas and compressed data reused, the pack streamed),
/// where LibGit2Sharp built, delta-searched and recompressed the whole pack in memory first
/// (4.3x slower than <c>git push</c> and the engine's largest allocation; issue 12).
/// </summary>
/// <remarks>
/// Locked down (<see cref="GitProcess"/>), because the mirror holds a hostile supplier's objects,
/// and also: <c>--no-verify</c>; only the configured URL's
/// protocol; no redirects (the credential goes to the configured server only); no prompts. The
/// credential is never on the command line: it reaches git as an <c>Authorization</c> header scoped
/// to the configured URL through the environment (<c>GIT_CONFIG_COUNT</c>/<c>GIT_CONFIG_KEY_n</c>),
/// which only this user and root can read, and git never prints it. A hard timeout kills git (and
/// its children) and is reported as an outage of VCS B.
/// </remarks>
public static class GitPush
{
    /// <summary>Upper bound of one push; beyond it the push is an outage of VCS B, retried later.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(30);

    private const int MaxOutputChars = 64 * 1024;

    /// <summary>
    /// Pushes <paramref name="sourceRef"/> of the bare repository at <paramref name="gitDir"/> to
    /// <paramref name="destinationRef"/> at <paramref name="url"/>.
    /// </summary>
    /// <exception cref="PipelineException">
    /// PUBLISH-REJECTED when the server refused the ref (it exists with other content, a hook declined);
    /// PUBLISH-PUSH when the server could not be reached, refused the credential, failed or timed out;
    /// VCS-NO-GIT when no git binary can be started (an outage of the engine, retried).
    /// </exception>
    public static async Task PushAsync(string gitDir, string sourceRef, string destinationRef, Uri url, GitCredentials? credentials,
        TimeSpan? timeout, CancellationToken ct)
    {
        var scheme = url.Scheme.ToLowerInvariant();
        if (scheme is not ("http" or "https" or "file"))
            throw new PipelineException("PUBLISH-PUSH", $"the internal repository URL must be http(s):// or file://, not {scheme}://");
        var psi = GitProcess.Create(gitDir,
            ["protocol.allow=never", $"protocol.{scheme}.allow=always", "http.followRedirects=false", "http.lowSpeedLimit=1024", "http.lowSpeedTime=120",
                // No delta search over big (mostly incompressible, prebuilt) blobs: it cost minutes and a GB per GB of delivery.
                "core.bigFileThreshold=16m"],
            ["push", "--porcelain", "--no-verify", "--no-recurse-submodules", "--", url.ToString(), $"{sourceRef}:{destinationRef}"]);
        if (credentials is not null)
        {
            var basic = Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials.User + ":" + credentials.Password));
            psi.Environment["GIT_CONFIG_COUNT"] = "1";
            psi.Environment["GIT_CONFIG_KEY_0"] = $"http.{url.GetLeftPart(UriPartial.Path)}.extraHeader";
            psi.Environment["GIT_CONFIG_VALUE_0"] = "Authorization: Basic " + basic;
        }

        using var process = GitProcess.Start(psi, "VCS-NO-GIT");
        process.StandardInput.Close();
        var stdout = ReadCappedAsync(process.StandardOutput);
        var stderr = ReadCappedAsync(process.StandardError);
        var limit = timeout ?? DefaultTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(limit);
        try
        {
            await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            throw new PipelineException("PUBLISH-PUSH", $"pushing to the internal repository did not finish within {limit.TotalSeconds:0} s; git was stopped");
        }

        var (output, errors) = (await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
        var refused = output.Split('\n').FirstOrDefault(l => l.StartsWith('!'));
        if (refused is not null)
        {
            // Porcelain: "!<TAB>src:dst<TAB>[rejected] (already exists)".
            var parts = refused.Split('\t');
            var why = parts.Length >= 3 ? parts[2].Trim() : refused;
            throw new PipelineException("PUBLISH-REJECTED", $"{destinationRef}: {SupplierMirror.Redact(Printable(why))}");
        }

        if (process.ExitCode != 0)
            throw new PipelineException("PUBLISH-PUSH", $"git push exited with {process.ExitCode}: {SupplierMirror.Redact(Printable(LastLines(errors)))}");
    }

    private static async Task<string> ReadCappedAsync(StreamReader reader)
    {
        var sb = new StringBuilder();
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            if (sb.Length < MaxOutputChars) sb.Append(buffer, 0, Math.Min(n, MaxOutputChars - sb.Length));
        return sb.ToString();
    }

    private static string LastLines(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "(no message)" : string.Join("; ", lines.TakeLast(3));
    }

    private static string Printable(string s) => new(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
