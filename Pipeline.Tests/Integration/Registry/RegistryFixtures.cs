using System.Diagnostics;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// A throw-away docker-registry process on a loopback port of its own choosing: plain, with bcrypt
/// basic auth, or with TLS (self-signed, SAN IP:127.0.0.1) and basic auth. It listens on port 0 and
/// we read the port it got from its "listening on" log line, so no other process can take the port
/// between our choice and its bind. Disposed = process stopped, folder deleted.
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
        TestServices.RequireTool("docker-registry", "docker-registry");
        var dir = Path.Combine(Path.GetTempPath(), "reg-fixture-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(dir);
        var creds = Path.Combine(dir, "creds");
        File.WriteAllText(creds, $"{User}:{Password}\n");
        var yaml = $"""
            version: 0.1
            log:
              level: info
            storage:
              filesystem:
                rootdirectory: {dir}/data
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:0

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
        var (process, port) = Launch(dir);
        return new ThrowAwayRegistry(process, dir, port, tls, ca, creds);
    }

    /// <summary>Starts docker-registry on the folder's config and waits for the port it reports.</summary>
    private static (Process Process, int Port) Launch(string dir)
    {
        var psi = new ProcessStartInfo("docker-registry") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(Path.Combine(dir, "config.yml"));
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        void OnLine(object? _, DataReceivedEventArgs e)
        {
            if (e.Data is null) return;
            log.Enqueue(e.Data);
            var m = ListeningOn.Match(e.Data);
            if (m.Success) listening.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        var process = Process.Start(psi)!;
        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync();
        var first = Task.WhenAny(listening.Task, exited, Task.Delay(TimeSpan.FromSeconds(20))).GetAwaiter().GetResult();
        if (first != listening.Task)
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"docker-registry did not report its port ({(first == exited ? "exited with " + process.ExitCode : "20 s passed")}):\n{string.Join('\n', log)}");
        }
        return (process, listening.Task.Result);
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

    /// <summary>Starts the registry again on the same port (now pinned in its config) over the same storage.</summary>
    public void Restart()
    {
        Stop();
        _process.Dispose();
        var config = Path.Combine(Dir, "config.yml");
        File.WriteAllText(config, File.ReadAllText(config).Replace("addr: 127.0.0.1:0", $"addr: 127.0.0.1:{Port}", StringComparison.Ordinal));
        (_process, _) = Launch(Dir);
    }

    /// <summary>docker-registry's line once its listener is bound: <c>msg="listening on 127.0.0.1:43683"</c> (", tls" after it with TLS).</summary>
    private static readonly System.Text.RegularExpressions.Regex ListeningOn = new(@"msg=""listening on 127\.0\.0\.1:(\d+)");

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
