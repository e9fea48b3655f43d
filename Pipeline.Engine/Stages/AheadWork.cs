namespace Pipeline.Engine.Stages;

/// <summary>What <see cref="ScanAhead"/> and <see cref="ImageAhead"/> share when a delivery stops.</summary>
internal static class AheadWork
{
    /// <summary>Waits for every task (already cancelled by the caller); their outcome no longer matters.</summary>
    public static async Task DrainAsync(IEnumerable<Task?> tasks)
    {
        foreach (var task in tasks)
        {
            if (task is null) continue;
            try
            {
                await task.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Cancelled, or failed after the delivery stopped: nothing records it.
            }
        }
    }
}
