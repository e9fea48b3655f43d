using System.Diagnostics;
using System.Text;

namespace Pipeline.Tests.Support;

/// <summary>Runs independent command-line tools (git, ssh-keygen, skopeo...) for tests.</summary>
/// <remarks>
/// Standard input is written while standard output and error are read (all three at once), so a
/// tool that fills a pipe never deadlocks us. A tool may exit without reading all of its input
/// (<c>head</c>, a <c>git</c> that refuses its arguments): the write then fails with EPIPE, which
/// only means "the process did not read all its input"; the exit code decides the outcome.
/// </remarks>
public static class Shell
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        /// <summary>True when the process exited or closed its input before reading all of it.</summary>
        public bool InputNotFullyRead { get; init; }

        public Result EnsureSuccess(string what)
        {
            if (ExitCode != 0) Assert.Fail($"{what} failed with exit code {ExitCode}:\n{Stderr}\n{Stdout}");
            return this;
        }
    }

    private sealed record Raw(int ExitCode, byte[] Stdout, string Stderr, bool InputNotFullyRead);

    public static Result Run(string fileName, IEnumerable<string> args, string? workDir = null, string? stdin = null,
        IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        var argList = args.ToList();
        var psi = Start(fileName, argList, workDir ?? Environment.CurrentDirectory);
        // Keep git hermetic: no user or system configuration leaks into tests.
        psi.Environment["GIT_CONFIG_GLOBAL"] = "/dev/null";
        psi.Environment["GIT_TERMINAL_PROMPT"] = "0";
        if (env is not null)
            foreach (var (k, v) in env) psi.Environment[k] = v;
        var raw = Execute(psi, stdin is null ? null : new UTF8Encoding(false).GetBytes(stdin), timeout ?? TimeSpan.FromMinutes(2),
            $"{fileName} {string.Join(' ', argList)}");
        return new Result(raw.ExitCode, Encoding.UTF8.GetString(raw.Stdout), raw.Stderr) { InputNotFullyRead = raw.InputNotFullyRead };
    }

    public static Result Git(string workDir, params string[] args) => Run("git", args, workDir);

    /// <summary>Runs a tool with byte-exact stdin and stdout (raw git objects, signatures), hermetic git settings plus <paramref name="env"/>.</summary>
    public static (int Exit, byte[] Stdout, string Stderr) RunBytes(string fileName, IEnumerable<string> args, string workDir, byte[]? stdin,
        IReadOnlyDictionary<string, string> env, TimeSpan? timeout = null)
    {
        var argList = args.ToList();
        var psi = Start(fileName, argList, workDir);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var raw = Execute(psi, stdin ?? [], timeout ?? TimeSpan.FromMinutes(2), $"{fileName} {string.Join(' ', argList)}");
        return (raw.ExitCode, raw.Stdout, raw.Stderr);
    }

    public static bool Exists(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, tool)));

    private static ProcessStartInfo Start(string fileName, IEnumerable<string> args, string workDir)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        return psi;
    }

    /// <summary>Runs the process with stdin written and stdout/stderr read concurrently; <paramref name="stdin"/> null = empty input.</summary>
    private static Raw Execute(ProcessStartInfo psi, byte[]? stdin, TimeSpan timeout, string what)
    {
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + psi.FileName);
        var stdout = new MemoryStream();
        var stdoutTask = p.StandardOutput.BaseStream.CopyToAsync(stdout);
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdinTask = WriteInputAsync(p.StandardInput.BaseStream, stdin ?? []);
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            Assert.Fail($"{what} timed out after {timeout}");
        }

        // The process has exited: its end of every pipe is closed (unless it left children holding them).
        if (!Task.WaitAll([stdoutTask, stderrTask, stdinTask], TimeSpan.FromSeconds(30)))
            Assert.Fail($"{what} exited, but a child process still holds its output open");
        return new Raw(p.ExitCode, stdout.ToArray(), stderrTask.Result, stdinTask.Result);
    }

    /// <summary>Writes all of <paramref name="input"/> and closes the stream; true when the reader went away first (EPIPE).</summary>
    private static async Task<bool> WriteInputAsync(Stream input, byte[] data)
    {
        try
        {
            await using (input)
            {
                if (data.Length > 0) await input.WriteAsync(data);
                await input.FlushAsync();
            }
            return false;
        }
        catch (IOException)
        {
            // EPIPE: the process closed its input (usually by exiting) before reading everything.
            // That is the process's business; its exit code says whether it succeeded.
            return true;
        }
    }
}
