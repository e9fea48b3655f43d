using System.Net;
using System.Net.Sockets;

namespace Pipeline.Tests.Checkup.Scanning;

/// <summary>A loopback TCP server that runs a scripted clamd conversation per connection (protocol unit tests only).</summary>
internal sealed class FakeClamd : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Task _loop;
    private readonly CancellationTokenSource _stop = new();

    public FakeClamd(Func<NetworkStream, Task> handler)
    {
        _listener.Start();
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (OperationCanceledException) { return; }
                _ = Task.Run(async () =>
                {
                    using (client)
                    {
                        try { await handler(client.GetStream()); }
                        catch (IOException) { }
                        catch (SocketException) { }
                    }
                });
            }
        });
    }

    public string Endpoint => $"tcp://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public static async Task<byte[]> ReadExactly(Stream s, int n)
    {
        var b = new byte[n];
        await s.ReadExactlyAsync(b);
        return b;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try { await _loop; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
