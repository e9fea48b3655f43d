using System.Diagnostics;

namespace Pipeline.Tests.Support;

/// <summary>
/// The real <c>pipeline</c> binary as a child process, with its log lines (stderr) watched: a test
/// acts (kill -9, SIGTERM, SIGHUP) the moment a given line appears, so it never sleeps to guess
/// where the engine is.
/// </summary>
public sealed class EngineProcess : IDisposable
{
    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _lines = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private EngineProcess(Process process) => _process = process;

    public int Pid => _process.Id;
    public IReadOnlyCollection<string> Lines => _lines;
    public string Log => string.Join("\n", _lines);

    /// <summary>The process has ended (killed or exited).</summary>
    public bool HasExited => _exited.Task.IsCompleted;

    /// <summary>The exit code of an ended process (137 after kill -9).</summary>
    public int ExitCode
    {
        get
        {
            _process.WaitForExit();
            return _process.ExitCode;
        }
    }

    /// <summary>Starts <c>dotnet pipeline.dll ARGS</c>; <paramref name="when"/> runs its action on the first log line it matches.</summary>
    public static EngineProcess Start(IEnumerable<string> args, Func<string, bool> when, Action<EngineProcess> act, IReadOnlyDictionary<string, string>? environment = null)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "pipeline.dll");
        if (!File.Exists(dll)) Assert.Fail($"{dll} is missing: the test project must reference Pipeline.Engine");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var e = new EngineProcess(p);
        var fired = 0;
        p.ErrorDataReceived += (_, d) =>
        {
            if (d.Data is null) return;
            e._lines.Enqueue(d.Data);
            if (when(d.Data) && Interlocked.Exchange(ref fired, 1) == 0) act(e);
        };
        p.OutputDataReceived += (_, d) =>
        {
            if (d.Data is not null) e._lines.Enqueue("stdout: " + d.Data);
        };
        p.Exited += (_, _) => e._exited.TrySetResult();
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return e;
    }

    /// <summary>kill -9 of this child, by its own handle.</summary>
    public void KillHard() => _process.Kill();

    /// <summary>Sends a signal (TERM, HUP) to this child only, by its process id.</summary>
    public void Signal(string name) => Shell.Run("kill", ["-" + name, Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]).EnsureSuccess("kill -" + name);

    /// <summary>Waits for the exit (a guard against a hang, not a synchronisation point) and returns the exit code.</summary>
    public async Task<int> WaitAsync(TimeSpan limit)
    {
        var done = await Task.WhenAny(_exited.Task, Task.Delay(limit));
        if (done != _exited.Task)
        {
            _process.Kill();
            Assert.Fail($"the engine did not exit within {limit}:\n{Log}");
        }

        _process.WaitForExit(); // drains the output
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.Dispose();
    }
}
