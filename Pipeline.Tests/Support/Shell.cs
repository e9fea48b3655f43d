using System.Diagnostics;

namespace Pipeline.Tests.Support;

/// <summary>Runs independent command-line tools (git, ssh-keygen, skopeo...) for tests.</summary>
public static class Shell
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public Result EnsureSuccess(string what)
        {
            if (ExitCode != 0) Assert.Fail($"{what} failed with exit code {ExitCode}:\n{Stderr}\n{Stdout}");
            return this;
        }
    }

    public static Result Run(string fileName, IEnumerable<string> args, string? workDir = null, string? stdin = null,
        IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // Keep git hermetic: no user or system configuration leaks into tests.
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        psi.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        psi.Environment["GIT_TERMINAL_PROMPT"] = "0";
        if (env is not null)
            foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + fileName);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }

        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{fileName} {string.Join(' ', args)} timed out");
        }

        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }

    public static Result Git(string workDir, params string[] args) => Run("git", args, workDir);

    /// <summary>Runs a tool with byte-exact stdin and stdout (raw git objects, signatures), hermetic git settings plus <paramref name="env"/>.</summary>
    public static (int Exit, byte[] Stdout, string Stderr) RunBytes(string fileName, IEnumerable<string> args, string workDir, byte[]? stdin,
        IReadOnlyDictionary<string, string> env)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + fileName);
        var stderrTask = p.StandardError.ReadToEndAsync();
        var ms = new MemoryStream();
        var stdoutTask = p.StandardOutput.BaseStream.CopyToAsync(ms);
        if (stdin is not null) p.StandardInput.BaseStream.Write(stdin);
        p.StandardInput.Close();
        stdoutTask.Wait();
        p.WaitForExit();
        return (p.ExitCode, ms.ToArray(), stderrTask.Result);
    }

    public static bool Exists(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));
}
