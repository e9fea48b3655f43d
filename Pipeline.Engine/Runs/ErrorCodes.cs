using Pipeline.Checkup;
using Pipeline.Engine.Configuration;
using Pipeline.Registry;

namespace Pipeline.Engine.Runs;

/// <summary>Maps any exception to the stable code and the message recorded in the ledger.</summary>
public static class ErrorCodes
{
    /// <summary>Recorded for a full disk (or quota) anywhere in the chain, whatever wrapped it: an outage, retried.</summary>
    public const string DiskFull = "ENG-DISK-FULL";

    public static (string Code, string Message) Describe(Exception e) => e switch
    {
        _ when DiskFullIn(e) is { } full => (DiskFull,
            $"no space left in the engine's work or temporary folder ({full.Message}); free space there: the delivery stays pending and is retried"),
        CheckupException c => (c.Code, c.Message),
        RegistryException r => (r.Code, r.Message),
        PipelineException p => (p.Code, p.Message),
        ConfigurationException cfg => (cfg.Code, cfg.Message),
        OperationCanceledException => ("ENG-CANCELLED", "the run was cancelled"),
        _ => ("ENG-INTERNAL", $"unexpected {e.GetType().Name}: {e.Message}"),
    };

    private static Exception? DiskFullIn(Exception e)
    {
        for (var x = e; x is not null; x = x.InnerException)
            if (FailureClass.IsDiskFull(x)) return x;
        return null;
    }
}
