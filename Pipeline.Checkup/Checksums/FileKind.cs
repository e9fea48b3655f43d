using System.Runtime.InteropServices;

namespace Pipeline.Checkup.Checksums;

/// <summary>The type of a directory entry, read without following symbolic links.</summary>
internal enum FileKind { Regular, Directory, Symlink, Other, Missing }

/// <summary>
/// lstat-like file type probe. .NET exposes no public API telling a FIFO, socket or device from a
/// regular file, and opening a FIFO blocks, so on Linux this calls <c>statx(2)</c> (whose structure
/// layout is the same on every architecture). Elsewhere it falls back to symlink/directory detection.
/// </summary>
internal static partial class FileKindProbe
{
    private const int AtFdCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const int AtEmptyPath = 0x1000;
    private const uint StatxType = 0x1;
    private const int StatxSize = 256;
    private const int ModeOffset = 28;

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatxPath(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int StatxFd(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);

    public static FileKind Probe(string fullPath)
    {
        if (OperatingSystem.IsLinux())
        {
            var buffer = new byte[StatxSize];
            if (StatxPath(AtFdCwd, fullPath, AtSymlinkNoFollow, StatxType, buffer) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is 2 or 20) return FileKind.Missing; // ENOENT, ENOTDIR
                throw new IOException($"statx failed with errno {errno}");
            }
            return FromMode(BitConverter.ToUInt16(buffer, ModeOffset));
        }

        var info = new FileInfo(fullPath);
        if (!info.Exists && !Directory.Exists(fullPath)) return FileKind.Missing;
        if (info.LinkTarget is not null || info.Attributes.HasFlag(FileAttributes.ReparsePoint)) return FileKind.Symlink;
        return info.Attributes.HasFlag(FileAttributes.Directory) ? FileKind.Directory : FileKind.Regular;
    }

    /// <summary>The kind of an already opened handle (fstat); guards against a swap between probe and open.</summary>
    public static FileKind Probe(Microsoft.Win32.SafeHandles.SafeFileHandle handle)
    {
        if (!OperatingSystem.IsLinux()) return FileKind.Regular;
        var buffer = new byte[StatxSize];
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var fd = (int)handle.DangerousGetHandle();
            if (StatxFd(fd, "", AtEmptyPath, StatxType, buffer) != 0)
                throw new IOException($"statx on an open file failed with errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
        return FromMode(BitConverter.ToUInt16(buffer, ModeOffset));
    }

    private static FileKind FromMode(ushort mode) => (mode & 0xF000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0xA000 => FileKind.Symlink,
        _ => FileKind.Other,
    };
}
