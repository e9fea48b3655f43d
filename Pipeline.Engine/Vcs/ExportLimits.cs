namespace Pipeline.Engine.Vcs;

/// <summary>Bounds on what a delivery's tree may hold; anything beyond is rejected, never truncated.</summary>
public sealed record ExportLimits(int MaxFiles, long MaxFileBytes, long MaxTotalBytes, int MaxDepth)
{
    public static ExportLimits Default { get; } = new(MaxFiles: 20_000, MaxFileBytes: 2L << 30, MaxTotalBytes: 8L << 30, MaxDepth: 32);
}
