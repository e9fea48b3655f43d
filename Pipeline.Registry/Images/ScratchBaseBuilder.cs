using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Images;

/// <summary>
/// Builds a tiny base image from a root file system folder: one layer holding every directory and
/// regular file below it (root:root; files 0755 when any execute bit is set on disk, else 0644;
/// directories 0755). Symbolic links and special files are rejected by <see cref="LayerBuilder"/>.
/// </summary>
public static class ScratchBaseBuilder
{
    /// <summary>Builds the base image; its blobs (the layer) land in <paramref name="store"/>.</summary>
    public static async Task<BuiltImage> BuildAsync(
        string rootfs,
        BlobStore store,
        ImageSettings settings,
        DateTimeOffset modificationTime,
        CancellationToken cancellationToken = default)
    {
        var root = Path.GetFullPath(rootfs);
        if (!Directory.Exists(root)) throw new RegistryException("REG-IMAGE-002", $"Root file system folder '{Safe.Printable(rootfs)}' does not exist.");
        var entries = new List<LayerEntry>();
        // Walk without following links: a link is handed on as an entry (the layer builder rejects
        // it), never descended into (.NET's recursive enumeration would follow a link to a folder).
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            foreach (var path in Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions { AttributesToSkip = 0, IgnoreInaccessible = false }))
            {
                var target = "/" + Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/');
                var info = new FileInfo(path);
                if (info.LinkTarget is null && info.Attributes.HasFlag(FileAttributes.Directory))
                {
                    entries.Add(new LayerEntry(null, target, 0x1ED));
                    pending.Push(path);
                    continue;
                }
                var mode = OperatingSystem.IsWindows() ? 0x1A4 : ((int)File.GetUnixFileMode(path) & 0x49) != 0 ? 0x1ED : 0x1A4;
                entries.Add(new LayerEntry(path, target, mode));
            }
        }

        var layer = await new LayerBuilder(store).BuildAsync(entries, modificationTime, cancellationToken: cancellationToken).ConfigureAwait(false);
        return ImageBuilder.Build(null, [layer], settings);
    }
}
