namespace Pipeline.Checkup.Checksums;

/// <summary>
/// Walks a folder tree without ever following a symbolic link: links are returned as entries (so a
/// caller can reject them) but never descended into. .NET's recursive enumeration does descend into
/// links to directories, so a link to <c>/etc</c> inside a hostile tree would take a recursive
/// chmod, delete or scan out of the tree; never use it on trees we do not own.
/// </summary>
public static class FileTree
{
    /// <summary>Every entry below <paramref name="root"/> (not the root itself), parents before children, in ordinal order per folder.</summary>
    public static IEnumerable<FileSystemInfo> Enumerate(string root)
    {
        var pending = new Stack<DirectoryInfo>();
        pending.Push(new DirectoryInfo(root));
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            var children = dir.EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false })
                .OrderBy(e => e.Name, StringComparer.Ordinal)
                .ToList();
            foreach (var child in children)
                yield return child;
            for (var i = children.Count - 1; i >= 0; i--)
            {
                if (children[i] is DirectoryInfo sub && sub.LinkTarget is null) pending.Push(sub);
            }
        }
    }

    /// <summary>The real (non-link) folders below <paramref name="root"/>, and the root itself last.</summary>
    public static IEnumerable<DirectoryInfo> RealDirectories(string root) =>
        Enumerate(root).OfType<DirectoryInfo>().Where(d => d.LinkTarget is null).Append(new DirectoryInfo(root));
}
