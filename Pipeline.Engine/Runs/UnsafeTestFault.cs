using System.Diagnostics;

namespace Pipeline.Engine.Runs;

/// <summary>
/// TEST ONLY, UNSAFE: <c>PIPELINE_UNSAFE_TEST_FAULT=POINT</c> kills the engine process with SIGKILL
/// (as <c>kill -9</c> would) when a delivery reaches POINT, so the fault suite can crash a node at
/// an exact place. Compiled only into Debug builds (symbol <c>PIPELINE_TEST_FAULTS</c>, which the
/// Release build that is shipped does not define): there every call to <see cref="At"/> is removed
/// by the compiler and the variable means nothing.
/// Points: <c>stage:NAME:before</c> (the stage is about to run), <c>stage:NAME:after</c> (it ran,
/// its ledger entry is not written), <c>stage:NAME:recorded</c> (its entry is written),
/// <c>accept:attached</c> (checkpoint and attestations done, the delivery not yet marked accepted).
/// </summary>
public static class UnsafeTestFault
{
    public const string Variable = "PIPELINE_UNSAFE_TEST_FAULT";

    [Conditional("PIPELINE_TEST_FAULTS")]
    public static void At(string point)
    {
        if (!string.Equals(Environment.GetEnvironmentVariable(Variable), point, StringComparison.Ordinal)) return;
        Console.Error.WriteLine($"UNSAFE TEST FAULT {Variable}={point}: killing this process with SIGKILL");
        Console.Error.Flush();
        using var self = Process.GetCurrentProcess();
        self.Kill();
        Thread.Sleep(Timeout.Infinite);
    }
}
