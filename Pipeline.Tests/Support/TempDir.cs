namespace Pipeline.Tests.Support;

/// <summary>A private temporary folder removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string? prefix = null)
    {
        Path = Directory.CreateTempSubdirectory(prefix ?? "pipeline-test-").FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            // Quarantine folders are read-only; make everything writable before removing.
            // Never through a link (a test may link to /etc): only real folders of our own.
            foreach (var d in Pipeline.Checkup.Checksums.FileTree.RealDirectories(Path))
                d.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
