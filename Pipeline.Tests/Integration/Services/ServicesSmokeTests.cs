using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Npgsql;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Services;

/// <summary>
/// Smoke tests for the real local services started by <c>scripts/services.sh start</c>: each
/// one talks the service's own protocol and, when something is down or misconfigured, fails
/// with the reason (which service, which address, what came back).
/// </summary>
[TestFixture]
[Category("Integration")]
public sealed class ServicesSmokeTests
{
    private static readonly TimeSpan IoTimeout = TimeSpan.FromSeconds(30);

    // ------------------------------------------------------------------ PostgreSQL

    [Test]
    public async Task PostgreSql_answers_select_1_in_database_pipeline()
    {
        var connectionString = TestServices.Require("PIPELINE_PG_CONN");
        using var cts = new CancellationTokenSource(IoTimeout);
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        NpgsqlConnection connection;
        try
        {
            connection = await dataSource.OpenConnectionAsync(cts.Token);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            Assert.Fail($"PostgreSQL is not reachable with PIPELINE_PG_CONN ({Redact(connectionString)}): {e.Message}. Run scripts/services.sh start.");
            return;
        }

        await using (connection)
        {
            await using var command = new NpgsqlCommand("select 1, current_database()", connection);
            await using var reader = await command.ExecuteReaderAsync(cts.Token);
            Assert.That(await reader.ReadAsync(cts.Token), Is.True, "select 1 returned no row");
            Assert.That(reader.GetInt32(0), Is.EqualTo(1), "select 1 did not return 1");
            Assert.That(reader.GetString(1), Is.EqualTo("pipeline"), "connected to the wrong database");
        }
    }

    // ------------------------------------------------------------------ clamd

    [Test]
    public async Task Clamd_answers_PONG_over_tcp()
    {
        var address = TestServices.Require("PIPELINE_CLAMD_TCP");
        var (host, port) = ParseHostPort(address, "PIPELINE_CLAMD_TCP");
        using var cts = new CancellationTokenSource(IoTimeout);
        using var socket = await ConnectTcpAsync(host, port, "clamd", cts.Token);

        var reply = await ClamdCommandAsync(socket, "zPING\0"u8.ToArray(), cts.Token);

        Assert.That(reply, Is.EqualTo("PONG"), $"clamd at {address} answered zPING with '{reply}'");
    }

    [Test]
    public async Task Clamd_answers_PONG_over_the_unix_socket()
    {
        var path = TestServices.Require("PIPELINE_CLAMD_SOCKET");
        using var cts = new CancellationTokenSource(IoTimeout);
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cts.Token);
        }
        catch (SocketException e)
        {
            Assert.Fail($"clamd unix socket {path} refused the connection ({e.SocketErrorCode}: {e.Message}); exists: {File.Exists(path)}. Run scripts/services.sh start.");
        }

        var reply = await ClamdCommandAsync(socket, "zPING\0"u8.ToArray(), cts.Token);

        Assert.That(reply, Is.EqualTo("PONG"), $"clamd at {path} answered zPING with '{reply}'");
    }

    [Test]
    public async Task Clamd_custom_database_detects_the_EICAR_test_string_and_passes_clean_bytes()
    {
        var address = TestServices.Require("PIPELINE_CLAMD_TCP");
        var (host, port) = ParseHostPort(address, "PIPELINE_CLAMD_TCP");
        using var cts = new CancellationTokenSource(IoTimeout);

        string infected;
        using (var socket = await ConnectTcpAsync(host, port, "clamd", cts.Token))
            infected = await ClamdInstreamAsync(socket, EicarTestFile(), cts.Token);
        string clean;
        using (var socket = await ConnectTcpAsync(host, port, "clamd", cts.Token))
            clean = await ClamdInstreamAsync(socket, "just some harmless text\n"u8.ToArray(), cts.Token);

        Assert.Multiple(() =>
        {
            Assert.That(infected, Does.StartWith("stream: ").And.Contain("EICAR").And.EndWith(" FOUND"),
                "clamd did not flag the EICAR test file: its DatabaseDirectory lacks the Pipeline.Test.EICAR signatures written by scripts/services.sh");
            Assert.That(clean, Is.EqualTo("stream: OK"), "clamd flagged clean bytes");
        });
    }

    // ------------------------------------------------------------------ OCI registry

    [Test]
    public async Task Registry_answers_200_on_v2_base_endpoint()
    {
        var registry = TestServices.Require("PIPELINE_REGISTRY");
        using var http = new HttpClient { Timeout = IoTimeout };
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync($"http://{registry}/v2/");
        }
        catch (HttpRequestException e)
        {
            Assert.Fail($"registry at http://{registry}/v2/ is not reachable: {e.Message}. Run scripts/services.sh start.");
            return;
        }

        using (response)
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"GET http://{registry}/v2/ answered {(int)response.StatusCode}");
            Assert.That(response.Headers.TryGetValues("Docker-Distribution-API-Version", out var versions) ? string.Join(",", versions) : null,
                Is.EqualTo("registry/2.0"), "the service on the registry port is not a distribution registry");
        }
    }

    // ------------------------------------------------------------------ git smart HTTP

    [Test]
    public async Task Git_http_serves_a_fresh_bare_repo_to_authenticated_users_and_accepts_their_push()
    {
        using var repo = GitRepoUnderTest.Create();
        using var cts = new CancellationTokenSource(IoTimeout);

        var lsEmpty = await RunGitAsync(null, repo.AuthArgs(["ls-remote", repo.Url]), cts.Token);
        Assert.That(lsEmpty.ExitCode, Is.EqualTo(0), $"authenticated git ls-remote {repo.Url} failed: {lsEmpty.Error}");
        Assert.That(lsEmpty.Output, Is.Empty, "a fresh bare repository should have no refs");

        var work = Directory.CreateTempSubdirectory("pipeline-smoke-git-");
        try
        {
            await RunGitOkAsync(work.FullName, ["init", "-q", "-b", "main"], cts.Token);
            await RunGitOkAsync(work.FullName, ["-c", "user.name=Smoke", "-c", "user.email=smoke@example.invalid",
                "commit", "-q", "--allow-empty", "-m", "smoke"], cts.Token);
            var head = (await RunGitOkAsync(work.FullName, ["rev-parse", "HEAD"], cts.Token)).Trim();

            var push = await RunGitAsync(work.FullName, repo.AuthArgs(["push", "-q", repo.Url, "HEAD:refs/heads/main"]), cts.Token);
            Assert.That(push.ExitCode, Is.EqualTo(0),
                $"authenticated push to {repo.Url} was refused (REMOTE_USER must reach git http-backend): {push.Error}");

            var ls = await RunGitAsync(null, repo.AuthArgs(["ls-remote", repo.Url]), cts.Token);
            Assert.That(ls.Output.Trim(), Is.EqualTo($"{head}\trefs/heads/main"), "the pushed ref is not served back");

            var anonymousPush = await RunGitAsync(work.FullName, ["push", "-q", repo.Url, "HEAD:refs/heads/anonymous"], cts.Token);
            Assert.That(anonymousPush.ExitCode, Is.Not.EqualTo(0), "a push without credentials was accepted");
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    [Test]
    public async Task Git_http_refuses_requests_without_or_with_wrong_credentials_with_401()
    {
        using var repo = GitRepoUnderTest.Create();
        using var cts = new CancellationTokenSource(IoTimeout);

        var anonymous = await RunGitAsync(null, ["ls-remote", repo.Url], cts.Token);
        Assert.That(anonymous.ExitCode, Is.Not.EqualTo(0), "git ls-remote without credentials succeeded: the git server is open to anyone");

        var infoRefs = repo.Url + "/info/refs?service=git-upload-pack";
        using var http = new HttpClient { Timeout = IoTimeout };
        using (var response = await http.GetAsync(infoRefs, cts.Token))
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "anonymous GET info/refs must be refused");
            Assert.That(response.Headers.WwwAuthenticate.Select(h => h.Scheme), Does.Contain("Basic"), "401 without a Basic challenge");
        }

        using (var wrong = new HttpRequestMessage(HttpMethod.Get, infoRefs))
        {
            wrong.Headers.Authorization = Basic(repo.User, "not-the-password");
            using var response = await http.SendAsync(wrong, cts.Token);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized), "a wrong password was accepted");
        }

        using (var right = new HttpRequestMessage(HttpMethod.Get, infoRefs))
        {
            right.Headers.Authorization = Basic(repo.User, repo.Password);
            using var response = await http.SendAsync(right, cts.Token);
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), "the right password was refused");
            Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/x-git-upload-pack-advertisement"),
                "the answer is not from git http-backend");
        }
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>The 68-byte EICAR test file, assembled from pieces so no source file contains it whole.</summary>
    private static byte[] EicarTestFile()
    {
        var text = string.Concat(@"X5O!P%@AP[4\PZX54(P^)7CC)7}$", "EICAR-STANDARD-", "ANTIVIRUS-TEST-FILE!$H+H*");
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.That(bytes, Has.Length.EqualTo(68), "test bug: EICAR test file must be 68 bytes");
        return bytes;
    }

    private static (string Host, int Port) ParseHostPort(string value, string key)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(value.AsSpan(colon + 1), out var port) || port is <= 0 or > 65535)
            Assert.Fail($"{key}='{value}' is not host:port");
        return (value[..colon], int.Parse(value.AsSpan(colon + 1)));
    }

    private static async Task<Socket> ConnectTcpAsync(string host, int port, string service, CancellationToken ct)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(host, port, ct);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            Assert.Fail($"{service} at {host}:{port} refused the connection ({e.SocketErrorCode}: {e.Message}). Run scripts/services.sh start.");
            throw;
        }
    }

    private static async Task<string> ClamdCommandAsync(Socket socket, byte[] command, CancellationToken ct)
    {
        await socket.SendAsync(command, SocketFlags.None, ct);
        return await ReadClamdReplyAsync(socket, ct);
    }

    private static async Task<string> ClamdInstreamAsync(Socket socket, byte[] content, CancellationToken ct)
    {
        await socket.SendAsync("zINSTREAM\0"u8.ToArray(), SocketFlags.None, ct);
        var length = new byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(length, (uint)content.Length);
        await socket.SendAsync(length, SocketFlags.None, ct);
        await socket.SendAsync(content, SocketFlags.None, ct);
        await socket.SendAsync(new byte[4], SocketFlags.None, ct);
        return await ReadClamdReplyAsync(socket, ct);
    }

    /// <summary>Reads a z-command reply: bytes up to the terminating NUL (or the end of the stream).</summary>
    private static async Task<string> ReadClamdReplyAsync(Socket socket, CancellationToken ct)
    {
        var reply = new List<byte>();
        var buffer = new byte[256];
        while (reply.Count < 64 * 1024)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0) break;
            var nul = Array.IndexOf(buffer, (byte)0, 0, n);
            reply.AddRange(buffer.AsSpan(0, nul < 0 ? n : nul).ToArray());
            if (nul >= 0) break;
        }
        return Encoding.ASCII.GetString(reply.ToArray());
    }

    private static AuthenticationHeaderValue Basic(string user, string password) =>
        new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));

    private static string Redact(string connectionString) =>
        string.Join(';', connectionString.Split(';').Select(p =>
            p.StartsWith("Password=", StringComparison.OrdinalIgnoreCase) ? "Password=***" : p));

    private sealed record GitResult(int ExitCode, string Output, string Error);

    private static async Task<string> RunGitOkAsync(string? workDir, IReadOnlyList<string> args, CancellationToken ct)
    {
        var result = await RunGitAsync(workDir, args, ct);
        Assert.That(result.ExitCode, Is.EqualTo(0), $"git {args[0]} failed: {result.Error}");
        return result.Output;
    }

    /// <summary>Runs git without any prompt or stored credential helper.</summary>
    private static async Task<GitResult> RunGitAsync(string? workDir, IReadOnlyList<string> args, CancellationToken ct)
    {
        var psi = new ProcessStartInfo("git")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Path.GetTempPath(),
        };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("credential.helper=");
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["GIT_TERMINAL_PROMPT"] = "0";
        psi.Environment["GIT_ASKPASS"] = "/bin/false";
        psi.Environment["SSH_ASKPASS"] = "/bin/false";
        psi.Environment["GIT_CONFIG_NOSYSTEM"] = "1";
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("git did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new GitResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>A fresh bare repository under PIPELINE_GIT_ROOT, deleted afterwards.</summary>
    private sealed class GitRepoUnderTest : IDisposable
    {
        private GitRepoUnderTest(string path, string url, string user, string password)
        {
            Path = path;
            Url = url;
            User = user;
            Password = password;
        }

        public string Path { get; }
        public string Url { get; }
        public string User { get; }
        public string Password { get; }

        public static GitRepoUnderTest Create()
        {
            var root = TestServices.Require("PIPELINE_GIT_ROOT");
            var baseUrl = TestServices.Require("PIPELINE_GIT_HTTP").TrimEnd('/');
            var user = TestServices.Require("PIPELINE_GIT_USER");
            var passwordFile = TestServices.Require("PIPELINE_GIT_PASSWORD_FILE");
            if (!File.Exists(passwordFile)) Assert.Fail($"PIPELINE_GIT_PASSWORD_FILE {passwordFile} does not exist");
            var password = File.ReadAllText(passwordFile).Trim();
            if (!Directory.Exists(root)) Assert.Fail($"PIPELINE_GIT_ROOT {root} does not exist");

            var relative = $"smoke/{Guid.NewGuid():N}.git";
            var path = System.IO.Path.Combine(root, relative);
            var init = RunGitAsync(null, ["init", "-q", "--bare", path], CancellationToken.None).GetAwaiter().GetResult();
            if (init.ExitCode != 0) Assert.Fail($"git init --bare {path} failed: {init.Error}");
            return new GitRepoUnderTest(path, $"{baseUrl}/{relative}", user, password);
        }

        /// <summary>Arguments with the Basic credentials in an extra header (never in the URL, so never in git's messages).</summary>
        public IReadOnlyList<string> AuthArgs(IReadOnlyList<string> args)
        {
            var token = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{User}:{Password}"));
            return ["-c", $"http.extraHeader=Authorization: Basic {token}", .. args];
        }

        public void Dispose()
        {
            if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
        }
    }
}
