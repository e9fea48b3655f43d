using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

/// <summary>
/// A docker-registry of the bench's own: the shared registry's config from scripts/services.sh
/// (filesystem storage, delete enabled, no upload purging, access log off) on a free loopback port
/// over a fresh folder. Disposed = process stopped, folder deleted.
/// </summary>
internal sealed class OwnRegistry : IDisposable
{
    private readonly Process _process;
    private readonly string _dir;

    private OwnRegistry(Process process, string dir, int port)
    {
        _process = process;
        _dir = dir;
        Address = $"127.0.0.1:{port}";
    }

    public string Address { get; }
    public Uri BaseUri => new($"http://{Address}/");

    public static OwnRegistry Start(string dir)
    {
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        File.WriteAllText(Path.Combine(dir, "config.yml"), $"""
            version: 0.1
            log:
              level: info
              accesslog:
                disabled: true
            storage:
              filesystem:
                rootdirectory: {dir}/data
              delete:
                enabled: true
              maintenance:
                uploadpurging:
                  enabled: false
            http:
              addr: 127.0.0.1:{port}
              headers:
                X-Content-Type-Options: [nosniff]

            """);
        var psi = new ProcessStartInfo("docker-registry") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(Path.Combine(dir, "config.yml"));
        var process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start docker-registry");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var registry = new OwnRegistry(process, dir, port);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        for (var i = 0; i < 200; i++)
        {
            if (process.HasExited) throw new InvalidOperationException($"docker-registry exited with {process.ExitCode}");
            try
            {
                using var r = http.GetAsync(registry.BaseUri + "v2/").GetAwaiter().GetResult();
                if (r.IsSuccessStatusCode) return registry;
            }
            catch (HttpRequestException)
            {
            }
            Thread.Sleep(50);
        }
        registry.Dispose();
        throw new InvalidOperationException("docker-registry did not answer within 10 s");
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        finally
        {
            _process.Dispose();
            try { Directory.Delete(_dir, true); } catch (IOException) { }
        }
    }
}

internal static class Mem
{
    /// <summary>VmHWM (peak resident set) of this process in MB.</summary>
    public static double HighWaterMarkMb()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        return double.NaN;
    }

    /// <summary>Resets VmHWM (Linux: write 5 to /proc/self/clear_refs).</summary>
    public static void ResetHighWaterMark()
    {
        GC.Collect();
        try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

internal static class Tool
{
    /// <summary>Runs a tool under /usr/bin/time -f %M; returns its peak RSS in MB.</summary>
    public static double Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/time") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-f");
        psi.ArgumentList.Add("MAXRSS=%M");
        psi.ArgumentList.Add(file);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        _ = stdout.Result;
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed: {stderr}");
        var line = stderr.Split('\n').Last(l => l.StartsWith("MAXRSS=", StringComparison.Ordinal));
        return long.Parse(line[7..], CultureInfo.InvariantCulture) / 1024.0;
    }

    /// <summary>The first line a tool prints for its version flag.</summary>
    public static string Version(string file, string flag)
    {
        try
        {
            var psi = new ProcessStartInfo(file, flag) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var text = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return text.Split('\n')[0].Trim();
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "not installed";
        }
    }
}
