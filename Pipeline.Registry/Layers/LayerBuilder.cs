using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using Pipeline.Registry.Model;
using ZstdSharp;

namespace Pipeline.Registry.Layers;

/// <summary>
/// One file or directory to put into a layer. <paramref name="SourcePath"/> is a regular file on
/// disk, or null for a directory; <paramref name="TargetPath"/> is absolute inside the image;
/// <paramref name="Mode"/> holds permission bits only (e.g. <c>0755</c> written as <c>0b111_101_101</c>
/// or <c>Convert.ToInt32("755", 8)</c>).
/// </summary>
public sealed record LayerEntry(string? SourcePath, string TargetPath, int Mode, int Uid = 0, int Gid = 0);

/// <summary>A built layer: its descriptor (compressed digest/size), its diffID and its blob file.</summary>
public sealed record Layer(Descriptor Descriptor, Digest DiffId, string BlobPath);

/// <summary>Compression of a built layer.</summary>
public enum LayerCompression { Gzip, Zstd }

/// <summary>
/// Builds deterministic layer tarballs: entries sorted ordinally by path, parents emitted as
/// <c>0755 root:root</c> directories unless listed, mtime pinned, no atime/ctime, no PAX headers,
/// empty user/group names. One streaming pass writes the tar, compresses it, hashes the tar (diffID)
/// and the compressed bytes (digest) and counts the size; the result is moved into the blob store.
/// </summary>
public sealed class LayerBuilder(BlobStore store)
{
    private const int DirMode = 0x1ED; // 0755
    /// <summary>zlib level of the gzip members (part of the output: changing it changes digests).</summary>
    internal const int GzipLevel = 6;
    private const int ZstdLevel = 9;

    /// <summary>
    /// Gzip blocks compressed at once (default: the processor count). Only speed and memory depend
    /// on it: the layer's bytes and digests are the same for every value.
    /// </summary>
    public int? Workers { get; init; }

    /// <summary>
    /// Builds a layer from <paramref name="entries"/> with every mtime set to <paramref name="modificationTime"/>.
    /// Rejects (<c>REG-LAYER-*</c>): setuid/setgid/sticky or non-permission mode bits, relative or
    /// <c>..</c>/<c>.</c>/empty-segment target paths, duplicates, negative ids, source symlinks,
    /// devices, FIFOs, sockets and anything that is not a regular file.
    /// </summary>
    public Task<Layer> BuildAsync(
        IReadOnlyList<LayerEntry> entries,
        DateTimeOffset modificationTime,
        LayerCompression compression = LayerCompression.Gzip,
        CancellationToken cancellationToken = default) =>
        BuildAsync(entries, modificationTime, compression, null, cancellationToken);

    /// <summary>As <see cref="BuildAsync(IReadOnlyList{LayerEntry}, DateTimeOffset, LayerCompression, CancellationToken)"/>, also writing the compressed bytes to <paramref name="copy"/>.</summary>
    internal async Task<Layer> BuildAsync(
        IReadOnlyList<LayerEntry> entries,
        DateTimeOffset modificationTime,
        LayerCompression compression,
        Stream? copy,
        CancellationToken cancellationToken)
    {
        var plan = Plan(entries);
        var mtime = DateTimeOffset.FromUnixTimeSeconds(modificationTime.ToUnixTimeSeconds());
        if (mtime < DateTimeOffset.UnixEpoch)
            throw new RegistryException("REG-LAYER-006", "The layer modification time must not be before 1970-01-01.");

        var temp = store.NewTempPath();
        try
        {
            Digest digest, diffId;
            long size;
            byte[]? diffIdBytes = null;
            using var tarDigest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
            await using (var sink = copy is null ? (Stream)file : new TeeStream(file, copy))
            using (var compressedHash = new HashingStream(sink, IncrementalHash.CreateHash(HashAlgorithmName.SHA256), leaveOpen: true))
            {
                // gzip: the tar is hashed (diffID) inside the parallel compressor, off this thread; zstd: inline.
                var gzip = compression == LayerCompression.Gzip
                    ? new ParallelGzipStream(compressedHash, GzipLevel, leaveOpen: true, Workers, tarDigest)
                    : null;
                Stream compressor = gzip ?? (Stream)new CompressionStream(compressedHash, ZstdLevel, leaveOpen: true);
                await using (compressor.ConfigureAwait(false))
                {
                    var tarSink = gzip ?? (Stream)new HashingStream(compressor, tarDigest, leaveOpen: true);
                    await using (var tar = new TarWriter(tarSink, TarEntryFormat.Gnu, leaveOpen: true))
                    {
                        foreach (var item in plan)
                        {
                            cancellationToken.ThrowIfCancellationRequested();
                            await WriteEntryAsync(tar, item, mtime, cancellationToken).ConfigureAwait(false);
                        }
                    }
                    await tarSink.FlushAsync(cancellationToken).ConfigureAwait(false);
                    if (gzip is not null) await gzip.CompleteAsync(cancellationToken).ConfigureAwait(false);
                    else
                    {
                        diffIdBytes = ((HashingStream)tarSink).GetHash();
                        tarSink.Dispose();
                    }
                }
                diffId = Digest.FromHash(Digest.Sha256, diffIdBytes ?? tarDigest.GetHashAndReset());
                digest = Digest.FromHash(Digest.Sha256, compressedHash.GetHash());
                size = compressedHash.Count;
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            var path = store.Commit(temp, digest);
            var mediaType = compression == LayerCompression.Gzip ? MediaTypes.OciLayerTarGzip : MediaTypes.OciLayerTarZstd;
            return new Layer(new Descriptor(mediaType, digest, size), diffId, path);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private sealed record PlannedEntry(string Name, bool IsDirectory, string? Source, int Mode, int Uid, int Gid);

    /// <summary>Validates the entries and returns the sorted list with implied parent directories.</summary>
    private static List<PlannedEntry> Plan(IReadOnlyList<LayerEntry> entries)
    {
        var byPath = new Dictionary<string, PlannedEntry>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var rel = NormalizeTarget(e.TargetPath);
            if ((e.Mode & ~0x1FF) != 0)
            {
                var what = (e.Mode & 0xE00) != 0 ? "setuid/setgid/sticky bits are not allowed" : "only permission bits (0..0777) are allowed";
                throw new RegistryException("REG-LAYER-002", $"Mode {Convert.ToString(e.Mode, 8)} for '{Safe.Printable(e.TargetPath)}' is rejected: {what}.");
            }
            if (e.Uid < 0 || e.Gid < 0)
                throw new RegistryException("REG-LAYER-002", $"Owner {e.Uid}:{e.Gid} for '{Safe.Printable(e.TargetPath)}' is rejected: ids must be >= 0.");
            if (!byPath.TryAdd(rel, new PlannedEntry(rel, e.SourcePath is null, e.SourcePath, e.Mode, e.Uid, e.Gid)))
                throw new RegistryException("REG-LAYER-003", $"Target path '{Safe.Printable(e.TargetPath)}' is listed twice.");
        }
        foreach (var rel in byPath.Keys.ToArray())
        {
            var slash = rel.LastIndexOf('/');
            while (slash > 0)
            {
                var parent = rel[..slash];
                if (byPath.TryGetValue(parent, out var existing))
                {
                    if (!existing.IsDirectory)
                        throw new RegistryException("REG-LAYER-003", $"'/{parent}' is a file but also the parent of '/{rel}'.");
                }
                else
                {
                    byPath[parent] = new PlannedEntry(parent, true, null, DirMode, 0, 0);
                }
                slash = parent.LastIndexOf('/');
            }
        }
        return byPath.Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
    }

    private static string NormalizeTarget(string? target)
    {
        string Reject(string why) => throw new RegistryException("REG-LAYER-001", $"Target path '{Safe.Printable(target)}' is rejected: {why}.");
        if (string.IsNullOrEmpty(target)) return Reject("it is empty");
        if (target[0] != '/') return Reject("it must be absolute");
        if (target.Contains('\\')) return Reject("backslashes are not allowed");
        if (target.Any(char.IsControl)) return Reject("control characters are not allowed");
        var rel = target[1..];
        if (rel.Length == 0) return Reject("the root directory cannot be an entry");
        foreach (var segment in rel.Split('/'))
        {
            if (segment == "..") return Reject("'..' segments are not allowed");
            if (segment == ".") return Reject("'.' segments are not allowed");
            if (segment.Length == 0) return Reject("empty segments or a trailing slash are not allowed");
        }
        return rel;
    }

    private static async Task WriteEntryAsync(TarWriter tar, PlannedEntry item, DateTimeOffset mtime, CancellationToken ct)
    {
        if (item.IsDirectory)
        {
            var dir = NewEntry(TarEntryType.Directory, item.Name + "/", item, mtime);
            await tar.WriteEntryAsync(dir, ct).ConfigureAwait(false);
            return;
        }

        var source = item.Source!;
        var before = StatSource(source, item.Name);
        await using var stream = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var after = FileStat.OfHandle(stream.SafeFileHandle);
        if (after.Kind != FileStat.Kind.Regular || after.Dev != before.Dev || after.Ino != before.Ino)
            throw new RegistryException("REG-LAYER-005", $"Source for '/{item.Name}' changed while it was opened; refusing it.");
        var entry = NewEntry(TarEntryType.RegularFile, item.Name, item, mtime);
        entry.DataStream = stream;
        await tar.WriteEntryAsync(entry, ct).ConfigureAwait(false);
        if (stream.Position != after.Size)
            throw new RegistryException("REG-LAYER-005", $"Source for '/{item.Name}' changed size while it was read; refusing it.");
    }

    private static FileStat.Info StatSource(string source, string name)
    {
        FileStat.Info info;
        try
        {
            info = FileStat.OfPath(source);
        }
        catch (FileNotFoundException)
        {
            throw new RegistryException("REG-LAYER-004", $"Source for '/{name}' does not exist: '{Safe.Printable(source)}'.");
        }
        return info.Kind switch
        {
            FileStat.Kind.Regular => info,
            FileStat.Kind.Symlink => throw new RegistryException("REG-LAYER-004", $"Source for '/{name}' is a symbolic link; only regular files are accepted."),
            FileStat.Kind.Directory => throw new RegistryException("REG-LAYER-004", $"Source for '/{name}' is a directory; give a null source for directories."),
            _ => throw new RegistryException("REG-LAYER-004", $"Source for '/{name}' is a {info.Kind} (device, FIFO or socket); only regular files are accepted."),
        };
    }

    private static GnuTarEntry NewEntry(TarEntryType type, string name, PlannedEntry item, DateTimeOffset mtime) => new(type, name)
    {
        ModificationTime = mtime,
        AccessTime = default,
        ChangeTime = default,
        Mode = (UnixFileMode)item.Mode,
        Uid = item.Uid,
        Gid = item.Gid,
        UserName = "",
        GroupName = "",
    };
}
