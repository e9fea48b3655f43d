using System.Diagnostics;

namespace Pipeline.Engine.Vcs;

/// <summary>
/// Starts the real <c>git</c> binary on one of the engine's bare repositories, locked down because
/// the repository holds a hostile supplier's objects: no system, global or XDG configuration, an
/// environment of only what is set here (none of the engine's own <c>GIT_*</c>), no hooks, no
/// credential helpers, no prompts, no replace refs, English messages.
/// </summary>
public static class GitProcess
{
    /// <summary>A start info for <c>git --git-dir DIR -c … ARGS</c>; the caller may add environment entries.</summary>
    public static ProcessStartInfo Create(string gitDir, IEnumerable<string> configs, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("git")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.Environment.Clear();
        psi.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        psi.Environment["HOME"] = "/nonexistent";
        psi.Environment["XDG_CONFIG_HOME"] = "/nonexistent";
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        psi.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        psi.Environment["GIT_TERMINAL_PROMPT"] = "0";
        psi.Environment["GIT_NO_REPLACE_OBJECTS"] = "1";
        psi.Environment["LC_ALL"] = "C";
        psi.ArgumentList.Add("--git-dir");
        psi.ArgumentList.Add(gitDir);
        foreach (var c in (string[])["core.hooksPath=/dev/null", "credential.helper=", "core.askPass=", .. configs])
        {
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(c);
        }

        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Starts the process; a missing git binary is <paramref name="code"/> (the engine needs git on its PATH).</summary>
    public static Process Start(ProcessStartInfo psi, string code)
    {
        var process = new Process { StartInfo = psi };
        try
        {
            process.Start();
            return process;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            process.Dispose();
            throw new PipelineException(code, $"cannot start git ({e.Message}); the engine needs git on its PATH", e);
        }
    }
}
