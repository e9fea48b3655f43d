using System.Text;

namespace Pipeline.Engine.Vcs;

/// <summary>One delivered file to write: its blob, size (from the object header), target path and mode.</summary>
public sealed record BlobToWrite(string BlobId, long Size, string Path, bool Executable, string RelativePath);

/// <summary>
/// Writes blobs of a bare repository to files through one <c>git cat-file --batch</c> process:
/// every blob is streamed from the pack to its file in 80 KB pieces, never held whole in memory
/// (LibGit2Sharp's blob stream inflated each whole object first, and was 3x slower than
/// <c>git archive | tar -x</c>; issue 12). git runs locked down (<see cref="GitProcess"/>).
/// </summary>
public static class BlobExport
{
    private const int Chunk = 80 * 1024;

    /// <param name="written">Told of each file once it is complete and closed (the scan starts on it).</param>
    /// <exception cref="PipelineException">FETCH-BLOB-SIZE when git's object differs from its header or is missing; VCS-NO-GIT.</exception>
    public static void WriteAll(string gitDir, IReadOnlyList<BlobToWrite> blobs, Action<BlobToWrite>? written, CancellationToken ct)
    {
        if (blobs.Count == 0) return;
        var psi = GitProcess.Create(gitDir, [], ["cat-file", "--batch"]);
        using var process = GitProcess.Start(psi, "VCS-NO-GIT");
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        var feed = Task.Run(() =>
        {
            try
            {
                var stdin = process.StandardInput.BaseStream;
                foreach (var b in blobs) stdin.Write(Encoding.ASCII.GetBytes(b.BlobId + "\n"));
                stdin.Close();
            }
            catch (IOException)
            {
                // git went away; the reader below reports why.
            }
        }, CancellationToken.None);
        var completed = false;
        try
        {
            var stdout = new BufferedStream(process.StandardOutput.BaseStream, 256 * 1024);
            var buffer = new byte[Chunk];
            foreach (var b in blobs)
            {
                ct.ThrowIfCancellationRequested();
                var header = ReadLine(stdout);
                var parts = header?.Split(' ');
                if (parts is not { Length: 3 } || parts[0] != b.BlobId || parts[1] != "blob" || !long.TryParse(parts[2], out var size) || size != b.Size)
                    throw new PipelineException("FETCH-BLOB-SIZE", $"'{b.RelativePath}': git answered '{Printable(header ?? "(nothing)")}' for blob {b.BlobId} of {b.Size} bytes");
                using (var dst = new FileStream(b.Path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
                {
                    var left = size;
                    while (left > 0)
                    {
                        var n = stdout.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                        if (n == 0)
                            throw new PipelineException("FETCH-BLOB-SIZE", $"'{b.RelativePath}' ended after {size - left} bytes, but its git object says {b.Size}");
                        dst.Write(buffer, 0, n);
                        left -= n;
                    }
                }

                if (stdout.ReadByte() != '\n')
                    throw new PipelineException("FETCH-BLOB-SIZE", $"'{b.RelativePath}' is longer than its git object says ({b.Size} bytes)");
                File.SetUnixFileMode(b.Path, b.Executable
                    ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
                    : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
                written?.Invoke(b);
            }

            completed = true;
        }
        finally
        {
            if (!completed && !process.HasExited) process.Kill(entireProcessTree: true);
            feed.Wait(CancellationToken.None);
            process.WaitForExit();
        }

        if (process.ExitCode != 0)
            throw new PipelineException("FETCH-BLOB-SIZE", $"git cat-file exited with {process.ExitCode}: {Printable(stderr.GetAwaiter().GetResult().Trim())}");
    }

    /// <summary>One header line (short, ASCII) read byte by byte so that no content byte is consumed.</summary>
    private static string? ReadLine(Stream s)
    {
        var sb = new StringBuilder();
        int c;
        while ((c = s.ReadByte()) >= 0)
        {
            if (c == '\n') return sb.ToString();
            if (sb.Length > 200) return sb.ToString();
            sb.Append((char)c);
        }

        return sb.Length == 0 ? null : sb.ToString();
    }

    private static string Printable(string s) => new(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
}
