using Pipeline.Checkup;
using Pipeline.Engine.Configuration;
using Pipeline.Registry;

namespace Pipeline.Engine.Runs;

/// <summary>Maps any exception to the stable code and the message recorded in the ledger.</summary>
public static class ErrorCodes
{
    public static (string Code, string Message) Describe(Exception e) => e switch
    {
        CheckupException c => (c.Code, c.Message),
        RegistryException r => (r.Code, r.Message),
        PipelineException p => (p.Code, p.Message),
        ConfigurationException cfg => (cfg.Code, cfg.Message),
        OperationCanceledException => ("ENG-CANCELLED", "the run was cancelled"),
        _ => ("ENG-INTERNAL", $"unexpected {e.GetType().Name}: {e.Message}"),
    };
}
