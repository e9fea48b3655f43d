using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Pipeline.Checkup.Scanning;

/// <summary>
/// Sends an open file descriptor over a connected Unix domain socket (<c>sendmsg</c> with
/// <c>SCM_RIGHTS</c>), as clamd's FILDES command expects. Linux, 64-bit only.
/// </summary>
internal static partial class FdPassing
{
    private const int SolSocket = 1;
    private const int ScmRights = 1;

    [DllImport("libc", SetLastError = true)]
    private static extern nint sendmsg(nint socket, nint message, int flags);

    private const int EAgain = 11;

    /// <summary>
    /// Like <see cref="Send"/>, for a socket that may have a full send buffer (pipelined sessions): waits until
    /// it is writable again, at most <paramref name="timeout"/>.
    /// </summary>
    public static async Task SendAsync(Socket socket, nint fd, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            try
            {
                Send(socket, fd);
                return;
            }
            catch (SocketException e) when (e.ErrorCode == EAgain || e.SocketErrorCode == SocketError.WouldBlock)
            {
                if (Environment.TickCount64 > deadline)
                    throw new ClamdException(ClamdErrors.Timeout, $"passing a file to clamd stalled for more than {timeout.TotalSeconds:0.###} s.", true);
                await Task.Delay(1, ct).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Sends one dummy byte with <paramref name="fd"/> attached.</summary>
    public static void Send(Socket socket, nint fd)
    {
        if (!OperatingSystem.IsLinux() || IntPtr.Size != 8)
            throw new PlatformNotSupportedException("file descriptor passing is implemented for 64-bit Linux only");
        // struct iovec { void* base; size_t len; }                                       16 bytes
        // struct msghdr { void* name; uint namelen; (pad4) iovec* iov; size_t iovlen;
        //                 void* control; size_t controllen; int flags; (pad4) }          56 bytes
        // struct cmsghdr { size_t len; int level; int type; } + int fd, padded            24 bytes (CMSG_SPACE(4))
        var mem = Marshal.AllocHGlobal(1 + 16 + 56 + 24 + 16);
        try
        {
            var data = mem;
            var iov = mem + 8;
            var msg = iov + 16;
            var cmsg = msg + 56;
            Marshal.WriteByte(data, 0);
            Marshal.WriteInt64(iov, data);
            Marshal.WriteInt64(iov + 8, 1);
            for (var i = 0; i < 56; i += 8) Marshal.WriteInt64(msg + i, 0);
            Marshal.WriteInt64(msg + 16, iov);
            Marshal.WriteInt64(msg + 24, 1);
            Marshal.WriteInt64(msg + 32, cmsg);
            Marshal.WriteInt64(msg + 40, 24);
            Marshal.WriteInt64(cmsg, 20); // CMSG_LEN(sizeof(int))
            Marshal.WriteInt32(cmsg + 8, SolSocket);
            Marshal.WriteInt32(cmsg + 12, ScmRights);
            Marshal.WriteInt32(cmsg + 16, (int)fd);
            Marshal.WriteInt32(cmsg + 20, 0);
            var handle = socket.SafeHandle.DangerousGetHandle();
            var sent = sendmsg(handle, msg, 0);
            if (sent != 1)
                throw new SocketException(Marshal.GetLastPInvokeError());
        }
        finally
        {
            Marshal.FreeHGlobal(mem);
        }
    }
}
