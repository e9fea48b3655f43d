using System.Globalization;

namespace Pipeline.Tests.Support;

/// <summary>
/// A dockerd of the test's own (a second security zone): its own socket, data-root and exec-root
/// in a temp folder, no bridge, no iptables, the given registries as insecure (plain http). Ready in about a
/// second. Stopped with SIGTERM (so it stops its own containerd), by its own pid.
/// </summary>
public sealed class ThrowAwayDockerd : ThrowAwayProcess
{
    private readonly TempDir _dir = new("pl-dockerd-");

    public string Endpoint => "unix://" + _dir.Combine("docker.sock");

    public static async Task<ThrowAwayDockerd> StartAsync(params string[] insecureRegistries)
    {
        if (!Shell.Exists("dockerd")) Assert.Fail("dockerd is not installed (scripts/services.sh start --docker installs docker.io)");
        var d = new ThrowAwayDockerd();
        var config = d._dir.Combine("daemon.json");
        await File.WriteAllTextAsync(config, System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["data-root"] = d._dir.Combine("data"),
            ["exec-root"] = d._dir.Combine("run"),
            ["pidfile"] = d._dir.Combine("dockerd.pid"),
            ["hosts"] = new[] { d.Endpoint },
            ["iptables"] = false,
            ["ip-forward"] = false,
            ["ip-masq"] = false,
            ["bridge"] = "none",
            ["insecure-registries"] = insecureRegistries,
        }));
        d.Launch("dockerd", "--config-file", config);
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(d._dir.Combine("docker.sock")), ct);
                return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
            },
        }) { Timeout = TimeSpan.FromSeconds(2) };
        await d.WaitReadyAsync(async () =>
        {
            try
            {
                using var r = await http.GetAsync("http://localhost/_ping");
                return r.IsSuccessStatusCode;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or System.Net.Sockets.SocketException)
            {
                return false;
            }
        }, "dockerd");
        return d;
    }

    public override void Dispose()
    {
        // SIGTERM by the pid it wrote (a SIGKILL would orphan its containerd), then wait until it is gone.
        if (Running && File.Exists(_dir.Combine("dockerd.pid"))
            && int.TryParse(File.ReadAllText(_dir.Combine("dockerd.pid")).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            Shell.Run("kill", ["-TERM", pid.ToString(CultureInfo.InvariantCulture)]);
            var until = DateTime.UtcNow.AddSeconds(20);
            while (Running && DateTime.UtcNow < until) Thread.Sleep(50);
        }
        base.Dispose();
        _dir.Dispose();
    }
}
