using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// A throw-away docker-registry process on a free loopback port: plain, with bcrypt basic auth, or
/// with TLS (self-signed, SAN IP:127.0.0.1) and basic auth. Disposed = process stopped, folder deleted.
/// </summary>
internal sealed class ThrowAwayRegistry : IDisposable
{
    public const string User = "ci-user";
    public const string Password = "pw-Secr3t-registry";

    private Process _process;

    public string Dir { get; }
    public int Port { get; }
    public string Address => $"127.0.0.1:{Port}";
    public bool Tls { get; }
    public string? CaFile { get; }
    public string CredentialsFile { get; }

    private ThrowAwayRegistry(Process process, string dir, int port, bool tls, string? caFile, string credentialsFile)
    {
        _process = process;
        Dir = dir;
        Port = port;
        Tls = tls;
        CaFile = caFile;
        CredentialsFile = credentialsFile;
    }

    public Uri BaseUri => new($"{(Tls ? "https" : "http")}://{Address}");

    public static ThrowAwayRegistry Start(bool auth, bool tls)
    {
        if (!Shell.Exists("docker-registry")) Assert.Ignore("docker-registry is not installed");
        var dir = Path.Combine(Path.GetTempPath(), "reg-fixture-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var port = FreePort();
        var creds = Path.Combine(dir, "creds");
        File.WriteAllText(creds, $"{User}:{Password}\n");
        var yaml = $"""
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: {dir}/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:{port}

            """;
        string? ca = null;
        if (tls)
        {
            Shell.Run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-keyout", Path.Combine(dir, "key.pem"), "-out", Path.Combine(dir, "cert.pem"),
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]).EnsureSuccess("openssl req");
            ca = Path.Combine(dir, "cert.pem");
            yaml += $"""
                  tls:
                    certificate: {dir}/cert.pem
                    key: {dir}/key.pem

                """;
        }
        if (auth)
        {
            var htpasswd = Shell.Run("htpasswd", ["-Bbn", User, Password]);
            htpasswd.EnsureSuccess("htpasswd");
            File.WriteAllText(Path.Combine(dir, "htpasswd"), htpasswd.Stdout.Trim() + "\n");
            yaml += $"""
                auth:
                  htpasswd:
                    realm: pipeline-tests
                    path: {dir}/htpasswd

                """;
        }
        File.WriteAllText(Path.Combine(dir, "config.yml"), yaml);
        var registry = new ThrowAwayRegistry(Launch(dir), dir, port, tls, ca, creds);
        registry.WaitReady();
        return registry;
    }

    private static Process Launch(string dir)
    {
        var psi = new ProcessStartInfo("docker-registry") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(Path.Combine(dir, "config.yml"));
        var process = Process.Start(psi)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>The blob's data file in the registry's storage (to corrupt it in a test).</summary>
    public string BlobDataPath(string digestHex) =>
        Path.Combine(Dir, "data", "docker", "registry", "v2", "blobs", "sha256", digestHex[..2], digestHex, "data");

    /// <summary>Kills the registry process and waits until it is gone (the storage stays).</summary>
    public void Stop()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(10_000);
    }

    /// <summary>Starts the registry again on the same port over the same storage.</summary>
    public void Restart()
    {
        Stop();
        _process.Dispose();
        _process = Launch(Dir);
        WaitReady();
    }

    private void WaitReady()
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) Assert.Fail($"docker-registry exited with {_process.ExitCode}");
            try
            {
                using var c = new TcpClient();
                c.Connect(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException)
            {
                Thread.Sleep(50);
            }
        }
        Assert.Fail("docker-registry did not listen within 20 s");
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
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
            try { Directory.Delete(Dir, true); } catch (IOException) { }
        }
    }
}
