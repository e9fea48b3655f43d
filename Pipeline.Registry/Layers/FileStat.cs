using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Pipeline.Registry.Layers;

/// <summary>
/// The file type and identity of a path without following symlinks, and of an open handle. Uses the
/// runtime's own native shim (<c>libSystem.Native</c>), whose FileStatus layout is platform-neutral.
/// </summary>
internal static partial class FileStat
{
    internal enum Kind { Regular, Directory, Symlink, CharDevice, BlockDevice, Fifo, Socket, Unknown }

    [StructLayout(LayoutKind.Sequential)]
    private struct FileStatus
    {
        public int Flags;
        public int Mode;
        public uint Uid;
        public uint Gid;
        public long Size;
        public long ATime, ATimeNsec, MTime, MTimeNsec, CTime, CTimeNsec, BirthTime, BirthTimeNsec;
        public long Dev;
        public long RDev;
        public long Ino;
        public uint UserFlags;
        // Slack in case the runtime's struct grows: the native side only writes its own size.
        private long _pad0, _pad1, _pad2, _pad3;
    }

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_LStat", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LStat(string path, out FileStatus output);

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_FStat")]
    private static partial int FStat(SafeFileHandle fd, out FileStatus output);

    internal readonly record struct Info(Kind Kind, long Dev, long Ino, long Size);

    public static Info OfPath(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            throw new PlatformNotSupportedException("Layer building needs a Unix file system.");
        if (LStat(path, out var st) != 0)
            throw new FileNotFoundException($"Cannot stat '{path}'.", path);
        return ToInfo(st);
    }

    public static Info OfHandle(SafeFileHandle handle)
    {
        if (FStat(handle, out var st) != 0) throw new IOException("fstat failed on an open layer source.");
        return ToInfo(st);
    }

    private static Info ToInfo(in FileStatus st)
    {
        var kind = (st.Mode & 0xF000) switch
        {
            0x8000 => Kind.Regular,
            0x4000 => Kind.Directory,
            0xA000 => Kind.Symlink,
            0x2000 => Kind.CharDevice,
            0x6000 => Kind.BlockDevice,
            0x1000 => Kind.Fifo,
            0xC000 => Kind.Socket,
            _ => Kind.Unknown,
        };
        return new Info(kind, st.Dev, st.Ino, st.Size);
    }
}

/// <summary>File-type checks for layer sources, without following symbolic links.</summary>
public static class SourceFiles
{
    /// <summary>True when <paramref name="path"/> is a regular file (not a link, folder, device, FIFO or socket).</summary>
    public static bool IsRegularFile(string path)
    {
        try
        {
            return FileStat.OfPath(path).Kind == FileStat.Kind.Regular;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }
}
