using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Tests.Support;

/// <summary>
/// A process this test started and may kill (never a shared service). Output is drained so the
/// process never blocks on a full pipe.
/// </summary>
public abstract class ThrowAwayProcess : IDisposable
{
    private Process? _process;

    protected void Launch(string file, params string[] args) => Launch(null, file, args);

    /// <summary>Starts the process; <paramref name="onLine"/> sees every line it prints (stdout and stderr).</summary>
    protected void Launch(Action<string>? onLine, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + file);
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) onLine?.Invoke(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onLine?.Invoke(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public bool Running => _process is { HasExited: false };

    /// <summary>
    /// SIGKILL to this process and its children, by its own handle, without waiting: safe from a
    /// line callback of the process itself, the moment a request shows up in its log.
    /// </summary>
    public void KillNow()
    {
        try
        {
            _process?.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    /// <summary>SIGKILL (to its children too, e.g. preforked workers), by this process's own handle; waits until it is gone.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }

        _process?.Dispose();
        _process = null;
    }

    public virtual void Dispose()
    {
        Kill();
        GC.SuppressFinalize(this);
    }

    /// <summary>Polls <paramref name="ready"/> until it answers (a service's start-up; not a stand-in for synchronising with the code under test).</summary>
    /// <summary>Waits until the clamd at <paramref name="endpoint"/> answers PING.</summary>
    protected Task WaitClamdReadyAsync(string endpoint)
    {
        var client = new ClamdClient(ClamdEndpoint.Parse(endpoint), new ClamdClientOptions { ConnectTimeout = TimeSpan.FromSeconds(1) });
        return WaitReadyAsync(async () =>
        {
            try
            {
                await client.PingAsync(CancellationToken.None);
                return true;
            }
            catch (ClamdException)
            {
                return false;
            }
        }, "clamd");
    }

    protected async Task WaitReadyAsync(Func<Task<bool>> ready, string what)
    {
        var until = DateTime.UtcNow.AddSeconds(60);
        while (!await ready())
        {
            if (!Running) Assert.Fail($"{what} exited during start-up");
            if (DateTime.UtcNow > until) Assert.Fail($"{what} did not become ready within 60 s");
            await Task.Delay(100);
        }
    }
}

/// <summary>
/// A clamd of the test's own (its own configuration and database with the EICAR signature), on a
/// unix socket in its own folder: no other process can take that address before or after it dies.
/// </summary>
public sealed class ThrowAwayClamd : ThrowAwayProcess
{
    private readonly TempDir _dir = new("pipeline-clamd-");

    public string Endpoint => "unix://" + _dir.Combine("clamd.sock");

    public static async Task<ThrowAwayClamd> StartAsync()
    {
        if (!File.Exists("/usr/sbin/clamd")) Assert.Fail("clamd is not installed (scripts/services.sh installs it)");
        var c = new ThrowAwayClamd();
        await c.RestartAsync();
        return c;
    }

    public async Task RestartAsync()
    {
        Kill();
        var db = Directory.CreateDirectory(_dir.Combine("db")).FullName;
        Directory.CreateDirectory(_dir.Combine("tmp"));
        await File.WriteAllTextAsync(Path.Combine(db, "throwaway.ndb"), "Pipeline.Test.EICAR:0:*:" + Convert.ToHexStringLower(Eicar.Bytes()) + "\n");
        var conf = _dir.Combine("clamd.conf");
        await File.WriteAllTextAsync(conf, $"""
            Foreground yes
            LogFile {_dir.Combine("clamd.log")}
            DatabaseDirectory {db}
            TemporaryDirectory {_dir.Combine("tmp")}
            LocalSocket {_dir.Combine("clamd.sock")}
            MaxThreads 4
            StreamMaxLength 64M
            MaxFileSize 64M
            ScanArchive yes
            AlertEncrypted yes
            AlertExceedsMax yes

            """);
        Launch("/usr/sbin/clamd", "-c", conf);
        await WaitClamdReadyAsync(Endpoint);
    }

    public override void Dispose()
    {
        base.Dispose();
        _dir.Dispose();
    }
}

/// <summary>A docker-registry of the test's own; its storage survives a restart.</summary>
public sealed class RestartableRegistry : ThrowAwayProcess
{
    private readonly TempDir _dir = new("pipeline-registry-");

    /// <summary>The port docker-registry reported on its first start (it listens on port 0 then, and on this port after a restart).</summary>
    public int Port { get; private set; }
    public string HostPort => $"127.0.0.1:{Port}";

    private static readonly System.Text.RegularExpressions.Regex ListeningOn = new(@"listening on 127\.0\.0\.1:(\d+)");

    /// <summary>Sees every line the registry logs (one per request it served), e.g. to stop it in the middle of a push.</summary>
    public Action<string>? OnLine { get; set; }

    public static async Task<RestartableRegistry> StartAsync()
    {
        if (!File.Exists("/usr/bin/docker-registry")) Assert.Fail("docker-registry is not installed (scripts/services.sh installs it)");
        var r = new RestartableRegistry();
        await r.RestartAsync();
        return r;
    }

    public async Task RestartAsync()
    {
        Kill();
        var config = _dir.Combine("config.yml");
        await File.WriteAllTextAsync(config, $"""
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: {_dir.Combine("data")}
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{Port}

            """);
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Launch(line =>
        {
            var m = ListeningOn.Match(line);
            if (m.Success) listening.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
            OnLine?.Invoke(line);
        }, "/usr/bin/docker-registry", "serve", config);
        if (Port == 0)
        {
            var first = await Task.WhenAny(listening.Task, Task.Delay(TimeSpan.FromSeconds(60)));
            if (first != listening.Task) Assert.Fail("docker-registry did not report its port within 60 s");
            Port = listening.Task.Result;
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await WaitReadyAsync(async () =>
        {
            try
            {
                using var r = await http.GetAsync($"http://{HostPort}/v2/");
                return r.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
            catch (TaskCanceledException)
            {
                return false;
            }
        }, "docker-registry");
    }

    public override void Dispose()
    {
        base.Dispose();
        _dir.Dispose();
    }
}

/// <summary>
/// An HTTP server that answers every request with 500 (a failing VCS B). It binds port 0 and keeps
/// the listener, so the port it reports is its own.
/// </summary>
public sealed class FailingHttpServer : IDisposable
{
    private static readonly byte[] Answer = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray();
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private int _requests;

    public FailingHttpServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await _listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                using (client)
                {
                    try
                    {
                        await ReadHeadersAsync(client.GetStream(), _stop.Token);
                        Interlocked.Increment(ref _requests);
                        await client.GetStream().WriteAsync(Answer, _stop.Token);
                    }
                    catch (Exception e) when (e is IOException or OperationCanceledException or SocketException)
                    {
                        // The client went away; the next one is served.
                    }
                }
            }
        });
    }

    public int Port { get; }
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Reads until the blank line that ends a request's headers (the body, if any, is not needed for a 500).</summary>
    private static async Task ReadHeadersAsync(NetworkStream stream, CancellationToken ct)
    {
        var tail = 0u;
        var one = new byte[1];
        while (await stream.ReadAsync(one, ct) == 1)
        {
            tail = (tail << 8) | one[0];
            if (tail == 0x0D0A0D0A) return;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _loop.Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}

/// <summary>A small tmpfs mounted (as root) for a full disk; unmounted on dispose.</summary>
public sealed class SmallTmpfs : IDisposable
{
    public SmallTmpfs(string path, string size)
    {
        Path = path;
        Directory.CreateDirectory(path);
        if (Environment.UserName != "root") Assert.Fail("mounting a tmpfs needs root");
        Shell.Run("mount", ["-t", "tmpfs", "-o", $"size={size}", "tmpfs", path]).EnsureSuccess("mount tmpfs");
    }

    public string Path { get; }

    public void Resize(string size) => Shell.Run("mount", ["-o", $"remount,size={size}", Path]).EnsureSuccess("remount tmpfs");

    public void Dispose() => Shell.Run("umount", ["-l", Path]);
}
