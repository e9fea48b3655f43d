using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Tests.Support;

/// <summary>Free loopback TCP ports for throw-away services.</summary>
public static class Ports
{
    public static int Free()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }
}

/// <summary>
/// A process this test started and may kill (never a shared service). Output is drained so the
/// process never blocks on a full pipe.
/// </summary>
public abstract class ThrowAwayProcess : IDisposable
{
    private Process? _process;

    protected void Launch(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start " + file);
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public bool Running => _process is { HasExited: false };

    /// <summary>SIGKILL, by this process's own handle; waits until it is gone.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
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

/// <summary>A clamd of the test's own (its own port, configuration and database with the EICAR signature).</summary>
public sealed class ThrowAwayClamd : ThrowAwayProcess
{
    private readonly TempDir _dir = new("pipeline-clamd-");

    public int Port { get; } = Ports.Free();
    public string Endpoint => $"tcp://127.0.0.1:{Port}";

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
            TCPSocket {Port}
            TCPAddr 127.0.0.1
            MaxThreads 4
            StreamMaxLength 64M
            MaxFileSize 64M
            ScanArchive yes
            AlertEncrypted yes
            AlertExceedsMax yes

            """);
        Launch("/usr/sbin/clamd", "-c", conf);
        var client = new ClamdClient(ClamdEndpoint.Parse(Endpoint), new ClamdClientOptions { ConnectTimeout = TimeSpan.FromSeconds(1) });
        await WaitReadyAsync(async () =>
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

    public int Port { get; } = Ports.Free();
    public string HostPort => $"127.0.0.1:{Port}";

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
              level: warn
            storage:
              filesystem:
                rootdirectory: {_dir.Combine("data")}
              delete:
                enabled: true
            http:
              addr: {HostPort}

            """);
        Launch("/usr/bin/docker-registry", "serve", config);
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

/// <summary>An HTTP server that answers every request with 500 (a failing VCS B).</summary>
public sealed class FailingHttpServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _loop;
    private int _requests;

    public FailingHttpServer()
    {
        Port = Ports.Free();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _loop = Task.Run(async () =>
        {
            while (_listener.IsListening)
            {
                HttpListenerContext ctx;
                try
                {
                    ctx = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                Interlocked.Increment(ref _requests);
                ctx.Response.StatusCode = 500;
                ctx.Response.Close();
            }
        });
    }

    public int Port { get; }
    public int Requests => Volatile.Read(ref _requests);

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
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
