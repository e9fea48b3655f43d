using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Hosting;

/// <summary>The engine's work folder must be writable before anything else happens (and before the schema is migrated).</summary>
public static class WorkFolder
{
    public const string NotWritable = "ENG-WORKDIR-NOT-WRITABLE";

    /// <summary>Creates the folder if needed and writes, flushes and removes a probe file; throws <see cref="NotWritable"/> naming the folder.</summary>
    public static void EnsureWritable(EngineSettings settings)
    {
        var dir = settings.WorkDir;
        var probe = Path.Combine(dir, ".write-probe-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            Directory.CreateDirectory(dir);
            using (var fs = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
                fs.WriteByte(1);
                fs.Flush(flushToDisk: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PipelineException(NotWritable,
                $"the work folder '{dir}' (workDir in {settings.SourceFile}) is not writable: {e.Message}; give the engine's user write access or name another folder", e);
        }
    }
}
