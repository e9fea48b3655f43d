using System.Buffers;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Checkup.Checksums;

/// <summary>
/// Verifies that a directory holds exactly the files of a <see cref="ChecksumManifest"/>: every regular
/// file under the root is listed, every listed file is there, and every digest matches. Symbolic links
/// and non-regular files are rejected. The manifest itself, the root <c>.git</c> entry and whatever
/// <c>isExcluded</c> accepts are skipped. All problems are collected and reported in one exception.
/// Files are hashed by streaming, in parallel; SHA-256 is always computed (the report carries it).
/// </summary>
public static class ChecksumVerifier
{
    private const int BufferSize = 1 << 20;
    private const int MaxListedInMessage = 10;

    /// <summary>Verifies <paramref name="rootDir"/> against <paramref name="manifest"/>.</summary>
    /// <param name="isExcluded">Optional extra exclusion on '/'-separated relative paths (e.g. a detached signature file).</param>
    /// <exception cref="ChecksumVerificationException">Any mismatch, missing, extra, symlink or non-regular file.</exception>
    /// <exception cref="CheckupException"><see cref="ChecksumErrors.RootUnreadable"/> when the root cannot be read.</exception>
    public static async Task<ChecksumReport> VerifyAsync(string rootDir, ChecksumManifest manifest, Func<string, bool>? isExcluded, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        var root = Path.GetFullPath(rootDir);
        if (FileKindProbe.Probe(root) != FileKind.Directory)
            throw new CheckupException(ChecksumErrors.RootUnreadable, $"The release root '{rootDir}' is not a directory.");

        var manifestPath = manifest.Name.Replace('\\', '/');
        bool Excluded(string rel) =>
            rel == manifestPath || rel == ".git" || rel.StartsWith(".git/", StringComparison.Ordinal) || (isExcluded?.Invoke(rel) ?? false);

        var problems = new ConcurrentBag<ChecksumProblem>();
        var present = new List<string>();
        try
        {
            Walk(root, "", present, problems, Excluded, ct);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckupException(ChecksumErrors.RootUnreadable, $"Cannot read the release tree under '{rootDir}': {e.Message}");
        }

        var listed = manifest.Entries.ToDictionary(e => e.Path, StringComparer.Ordinal);
        var presentSet = new HashSet<string>(present, StringComparer.Ordinal);
        foreach (var entry in manifest.Entries)
        {
            if (Excluded(entry.Path))
                problems.Add(new ChecksumProblem(ChecksumProblemKind.ExcludedListed, entry.Path,
                    $"listed on line {entry.LineNumber} but the path is excluded from verification"));
            else if (!presentSet.Contains(entry.Path) && !problems.Any(p => p.Path == entry.Path))
                problems.Add(new ChecksumProblem(ChecksumProblemKind.Missing, entry.Path, $"listed on line {entry.LineNumber} but absent"));
        }
        foreach (var path in present)
            if (!listed.ContainsKey(path))
                problems.Add(new ChecksumProblem(ChecksumProblemKind.Extra, path, "present but not listed in the manifest"));

        var toHash = present.Where(listed.ContainsKey).ToList();
        var results = new ConcurrentBag<FileDigest>();
        var wantSha512 = manifest.Algorithm == "SHA512";
        await Parallel.ForEachAsync(toHash,
            new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = ct },
            async (rel, token) =>
            {
                var full = Path.Combine(root, rel);
                var (kind, size, sha256, sha512) = await HashAsync(full, wantSha512, token).ConfigureAwait(false);
                if (kind != FileKind.Regular)
                {
                    problems.Add(new ChecksumProblem(kind == FileKind.Symlink ? ChecksumProblemKind.Symlink : ChecksumProblemKind.NotRegularFile,
                        rel, "changed into a non-regular file while being verified"));
                    return;
                }
                var entry = listed[rel];
                var actual = wantSha512 ? sha512! : sha256;
                if (!string.Equals(actual, entry.Digest, StringComparison.Ordinal))
                    problems.Add(new ChecksumProblem(ChecksumProblemKind.Mismatch, rel,
                        $"{manifest.Algorithm} is {actual}, the manifest (line {entry.LineNumber}) says {entry.Digest}"));
                results.Add(new FileDigest(rel, size, sha256));
            }).ConfigureAwait(false);

        if (!problems.IsEmpty)
        {
            var sorted = problems.OrderBy(p => p.Kind).ThenBy(p => p.Path, StringComparer.Ordinal).ToList();
            var sb = new StringBuilder();
            sb.Append(sorted.Count).Append(" problem(s) verifying '").Append(rootDir).Append("' against ").Append(manifest.Name).Append(':');
            foreach (var p in sorted.Take(MaxListedInMessage))
                sb.Append("\n  ").Append(p.Code).Append(' ').Append(p.Kind).Append(" '").Append(ChecksumManifest.Printable(p.Path)).Append("': ").Append(p.Detail);
            if (sorted.Count > MaxListedInMessage) sb.Append("\n  ... and ").Append(sorted.Count - MaxListedInMessage).Append(" more");
            throw new ChecksumVerificationException(sorted[0].Code, sb.ToString(), sorted);
        }

        var files = results.OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        return new ChecksumReport(manifest.Algorithm, manifest.ManifestDigest, files);
    }

    private static void Walk(string dir, string prefix, List<string> present, ConcurrentBag<ChecksumProblem> problems,
        Func<string, bool> excluded, CancellationToken ct)
    {
        var names = new DirectoryInfo(dir).EnumerateFileSystemInfos()
            .Select(i => i.Name).OrderBy(n => n, StringComparer.Ordinal).ToList();
        foreach (var name in names)
        {
            ct.ThrowIfCancellationRequested();
            var rel = prefix + name;
            if (excluded(rel)) continue;
            var full = Path.Combine(dir, name);
            switch (FileKindProbe.Probe(full))
            {
                case FileKind.Directory:
                    Walk(full, rel + "/", present, problems, excluded, ct);
                    break;
                case FileKind.Regular:
                    present.Add(rel);
                    break;
                case FileKind.Symlink:
                    problems.Add(new ChecksumProblem(ChecksumProblemKind.Symlink, rel, "symbolic links are not accepted in a release"));
                    break;
                case FileKind.Missing:
                    break;
                default:
                    problems.Add(new ChecksumProblem(ChecksumProblemKind.NotRegularFile, rel, "not a regular file (FIFO, socket or device)"));
                    break;
            }
        }
    }

    private static async Task<(FileKind Kind, long Size, string Sha256, string? Sha512)> HashAsync(string path, bool sha512, CancellationToken ct)
    {
        var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, BufferSize = 0,
            Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
        });
        await using (stream.ConfigureAwait(false))
        {
            var kind = FileKindProbe.Probe(stream.SafeFileHandle);
            if (kind != FileKind.Regular) return (kind, 0, "", null);
            using var h256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            using var h512 = sha512 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA512) : null;
            var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            try
            {
                long size = 0;
                int n;
                while ((n = await stream.ReadAsync(buffer.AsMemory(0, BufferSize), ct).ConfigureAwait(false)) > 0)
                {
                    h256.AppendData(buffer, 0, n);
                    h512?.AppendData(buffer, 0, n);
                    size += n;
                }
                return (kind, size, Convert.ToHexStringLower(h256.GetHashAndReset()),
                    h512 is null ? null : Convert.ToHexStringLower(h512.GetHashAndReset()));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }
}
