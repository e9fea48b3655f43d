using System.Net;
using System.Net.Sockets;

namespace Pipeline.Tests.Support;

/// <summary>
/// A loopback TCP port on which nothing listens, held for as long as this object lives: the socket
/// is bound (so no other process can take the port) but never listens, so every connection is
/// refused. Finding a "free" port by closing a listener and hoping nobody takes it races with
/// every other process on the machine; this does not.
/// </summary>
public sealed class ClosedPort : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

    public ClosedPort() => _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    /// <summary>The port as a clamd endpoint (<c>tcp://127.0.0.1:PORT</c>).</summary>
    public string Endpoint => $"tcp://127.0.0.1:{Port}";

    public void Dispose() => _socket.Dispose();
}
