namespace Pipeline.Engine.Runs;

/// <summary>
/// When a pending delivery is retried: <see cref="Initial"/> after the first failed attempt,
/// doubling with every further one, never more than <see cref="Maximum"/>.
/// </summary>
public sealed record RetryBackoff(TimeSpan Initial, TimeSpan Maximum)
{
    public static RetryBackoff Default { get; } = new(TimeSpan.FromMinutes(1), TimeSpan.FromHours(1));

    /// <summary>The wait after attempt <paramref name="attempt"/> (1-based) failed.</summary>
    public TimeSpan Delay(int attempt)
    {
        if (Initial <= TimeSpan.Zero) return TimeSpan.Zero;
        var factor = Math.Pow(2, Math.Clamp(attempt - 1, 0, 30));
        var ticks = Math.Min(Initial.Ticks * factor, Maximum.Ticks);
        return TimeSpan.FromTicks((long)ticks);
    }
}
