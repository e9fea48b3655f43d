using System.Diagnostics;

namespace Pipeline.Engine.Runs;

/// <summary>
/// TEST ONLY, UNSAFE: fault injection at exact places of a delivery, for the fault suite.
/// <list type="bullet">
/// <item><c>PIPELINE_UNSAFE_TEST_FAULT=POINT</c> kills the engine process with SIGKILL (as <c>kill -9</c>
/// would) when a delivery reaches POINT.</item>
/// <item><c>PIPELINE_UNSAFE_TEST_PAUSE=POINT</c> with <c>PIPELINE_UNSAFE_TEST_PAUSE_FILE=PATH</c> pauses
/// the delivery the first time it reaches POINT: the engine writes <c>PATH.paused</c> (the point and
/// its process id) and waits until <c>PATH</c> exists, so a test can stop or restart a service (or
/// kill this process) at that exact place without guessing with sleeps.</item>
/// </list>
/// Compiled only into Debug builds (symbol <c>PIPELINE_TEST_FAULTS</c>, which the Release build that
/// is shipped does not define): there every call to <see cref="At"/> is removed by the compiler and
/// the variables mean nothing.
/// Points: <c>stage:NAME:before</c> (the stage is about to run), <c>stage:NAME:after</c> (it ran,
/// its ledger entry is not written), <c>stage:NAME:recorded</c> (its entry is written),
/// <c>accept:attached</c> (checkpoint and attestations done, the delivery not yet marked accepted).
/// </summary>
public static class UnsafeTestFault
{
    public const string Variable = "PIPELINE_UNSAFE_TEST_FAULT";
    public const string PauseVariable = "PIPELINE_UNSAFE_TEST_PAUSE";
    public const string PauseFileVariable = "PIPELINE_UNSAFE_TEST_PAUSE_FILE";

    private static int _paused;

    [Conditional("PIPELINE_TEST_FAULTS")]
    public static void At(string point)
    {
        if (string.Equals(Environment.GetEnvironmentVariable(PauseVariable), point, StringComparison.Ordinal)) Pause(point);
        if (!string.Equals(Environment.GetEnvironmentVariable(Variable), point, StringComparison.Ordinal)) return;
        Console.Error.WriteLine($"UNSAFE TEST FAULT {Variable}={point}: killing this process with SIGKILL");
        Console.Error.Flush();
        using var self = Process.GetCurrentProcess();
        self.Kill();
        Thread.Sleep(Timeout.Infinite);
    }

    private static void Pause(string point)
    {
        var release = Environment.GetEnvironmentVariable(PauseFileVariable);
        if (string.IsNullOrEmpty(release) || Interlocked.Exchange(ref _paused, 1) == 1) return;
        Console.Error.WriteLine($"UNSAFE TEST PAUSE {PauseVariable}={point}: waiting for {release}");
        Console.Error.Flush();
        File.WriteAllText(release + ".paused", $"{point} {Environment.ProcessId}\n");
        // Blocks this delivery's thread on purpose: nothing of it may move until the test says so.
        while (!File.Exists(release)) Thread.Sleep(20);
        Console.Error.WriteLine($"UNSAFE TEST PAUSE {PauseVariable}={point}: released");
        Console.Error.Flush();
    }
}
