using Quartz;

namespace Pipeline.Engine.Observability;

/// <summary>The daemon's own part of readiness: its Quartz scheduler is running (not created, in standby, shutting down or shut down).</summary>
public static class DaemonProbes
{
    public static Func<CancellationToken, Task<bool>> SchedulerRunning(IServiceProvider services) => async ct =>
    {
        if (services.GetService(typeof(ISchedulerFactory)) is not ISchedulerFactory factory) return false;
        var schedulers = await factory.GetAllSchedulers(ct).ConfigureAwait(false);
        if (schedulers.Count == 0) return false;
        foreach (var s in schedulers)
        {
            if (await s.GetStatus(ct).ConfigureAwait(false) != SchedulerStatus.Running) return false;
        }

        return true;
    };
}
