using System.Net;
using System.Net.Sockets;
using Npgsql;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Tests.Support;

/// <summary>
/// A PostgreSQL cluster of the test's own (initdb in the test's folder, its own port): the fault
/// suite stops it (<c>pg_ctl stop -m immediate</c>, as a power loss would) and starts it again,
/// which it must never do to the shared server other tests use.
/// </summary>
public sealed class PrivatePostgres : IDisposable
{
    private const string Bin = "/usr/lib/postgresql/15/bin";
    private readonly string _dir;

    private PrivatePostgres(string dir, int port)
    {
        _dir = dir;
        Port = port;
    }

    public int Port { get; }
    private string Data => Path.Combine(_dir, "data");
    private string LogFile => Path.Combine(_dir, "postgres.log");

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database}";

    /// <summary>initdb (as the postgres user: the server refuses root) in <paramref name="dir"/>, then start.</summary>
    public static PrivatePostgres Create(string dir)
    {
        if (!File.Exists(Path.Combine(Bin, "initdb"))) Assert.Fail($"{Bin}/initdb is missing (scripts/services.sh installs PostgreSQL 15)");
        Directory.CreateDirectory(dir);
        // The server runs as postgres: every parent folder must be searchable by it.
        for (var d = new DirectoryInfo(dir); d.Parent is not null && d.FullName.StartsWith(Path.GetTempPath(), StringComparison.Ordinal); d = d.Parent)
            d.UnixFileMode |= UnixFileMode.OtherExecute | UnixFileMode.GroupExecute;
        Shell.Run("chown", ["postgres:postgres", dir]).EnsureSuccess("chown the PostgreSQL folder");
        var pg = new PrivatePostgres(dir, FreePort());
        AsPostgres($"{Bin}/initdb -D '{pg.Data}' -U postgres --auth=trust -N -E UTF8 --locale=C.UTF-8").EnsureSuccess("initdb");
        File.AppendAllText(Path.Combine(pg.Data, "postgresql.conf"), $"""

            listen_addresses = '127.0.0.1'
            port = {pg.Port}
            unix_socket_directories = '{dir}'
            fsync = off
            full_page_writes = off
            max_connections = 100

            """);
        pg.Start();
        return pg;
    }

    /// <summary>Starts the server and waits until it accepts connections (pg_ctl -w).</summary>
    public void Start() =>
        AsPostgres($"{Bin}/pg_ctl -D '{Data}' -l '{LogFile}' -w -t 60 start").EnsureSuccess("pg_ctl start:\n" + Tail());

    /// <summary>Stops the server at once, without a shutdown checkpoint and without telling its clients (a power loss); the next start recovers from the WAL.</summary>
    public void StopImmediately() => AsPostgres($"{Bin}/pg_ctl -D '{Data}' -m immediate -w -t 60 stop").EnsureSuccess("pg_ctl stop -m immediate");

    public async Task CreateDatabaseAsync(string name)
    {
        // Unpooled: a pooled connection would be a dead one after a restart.
        await using var conn = new NpgsqlConnection(ConnectionString("postgres") + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"create database {name}", conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private string Tail() => File.Exists(LogFile) ? string.Join("\n", File.ReadLines(LogFile).TakeLast(20)) : "";

    /// <summary>Runs a command line as the postgres user; output to a file (a started server must not hold our pipes).</summary>
    private static Shell.Result AsPostgres(string command) =>
        Shell.Run("runuser", ["-u", "postgres", "--", "bash", "-c", command + " </dev/null"], timeout: TimeSpan.FromMinutes(2));

    internal static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose()
    {
        NpgsqlConnection.ClearAllPools();
        if (File.Exists(Path.Combine(Data, "postmaster.pid")))
            AsPostgres($"{Bin}/pg_ctl -D '{Data}' -m immediate -w -t 60 stop");
    }
}

/// <summary>
/// A clamd of the test's own that logs every scanned stream on its output (no log file), so a test
/// can kill it the moment the first file of a delivery has been scanned: in the middle of a scan.
/// </summary>
public sealed class LoggingClamd : ThrowAwayProcess
{
    private readonly string _dir;

    public LoggingClamd(string dir)
    {
        _dir = Directory.CreateDirectory(dir).FullName;
    }

    public string Endpoint => "unix://" + Path.Combine(_dir, "clamd.sock");
    public string ConfigFile => Path.Combine(_dir, "clamd.conf");

    /// <summary>Sees every line clamd prints (<c>instream(local): OK</c> after each scanned stream).</summary>
    public Action<string>? OnLine { get; set; }

    public async Task StartAsync()
    {
        Kill();
        var db = Directory.CreateDirectory(Path.Combine(_dir, "db")).FullName;
        Directory.CreateDirectory(Path.Combine(_dir, "tmp"));
        await File.WriteAllTextAsync(Path.Combine(db, "faults.ndb"), "Pipeline.Test.EICAR:0:*:" + Convert.ToHexStringLower(Eicar.Bytes()) + "\n");
        await File.WriteAllTextAsync(ConfigFile, $"""
            Foreground yes
            LogClean yes
            LogTime no
            DatabaseDirectory {db}
            TemporaryDirectory {Path.Combine(_dir, "tmp")}
            LocalSocket {Path.Combine(_dir, "clamd.sock")}
            MaxThreads 4
            StreamMaxLength 64M
            MaxScanSize 256M
            MaxFileSize 64M
            ScanArchive yes
            AlertEncrypted yes
            AlertEncryptedArchive yes
            AlertExceedsMax yes

            """);
        File.Delete(Path.Combine(_dir, "clamd.sock"));
        Launch(line => OnLine?.Invoke(line), "/usr/sbin/clamd", "-c", ConfigFile);
        await WaitClamdReadyAsync(Endpoint);
    }
}

/// <summary>
/// VCS B of the test's own: git smart HTTP (<c>git http-backend</c>) behind an nginx in one process
/// (<c>master_process off</c>, so SIGKILL stops it whole) and an fcgiwrap, with the shared git
/// server's users (basic auth). nginx logs every request on its output, so a test can kill it in
/// the middle of a push (after the ref advertisement, before the pack).
/// </summary>
public sealed class PrivateGitServer : ThrowAwayProcess
{
    private readonly string _dir;
    private readonly Fcgiwrap _fcgiwrap;

    private PrivateGitServer(string dir)
    {
        _dir = dir;
        _fcgiwrap = new Fcgiwrap(Path.Combine(dir, "fcgiwrap.sock"));
        Port = PrivatePostgres.FreePort();
    }

    public int Port { get; }
    public string Repos => Path.Combine(_dir, "repos");

    /// <summary>The base URL of the repositories (<c>http://127.0.0.1:PORT/git</c>).</summary>
    public string Url => $"http://127.0.0.1:{Port}/git";

    /// <summary>Sees every line nginx prints (one access-log line per request served).</summary>
    public Action<string>? OnLine { get; set; }

    public static async Task<PrivateGitServer> StartAsync(string dir)
    {
        if (!File.Exists("/usr/sbin/nginx") || !File.Exists("/usr/sbin/fcgiwrap")) Assert.Fail("nginx and fcgiwrap are not installed (scripts/services.sh installs them)");
        Directory.CreateDirectory(Path.Combine(dir, "repos"));
        Directory.CreateDirectory(Path.Combine(dir, "tmp"));
        var server = new PrivateGitServer(dir);
        await server._fcgiwrap.StartAsync();
        await server.RestartAsync();
        return server;
    }

    public async Task RestartAsync()
    {
        Kill();
        var htpasswd = Path.Combine(TestServices.Require("PIPELINE_STATE_DIR"), "git", "htpasswd");
        if (!File.Exists(htpasswd)) Assert.Fail($"{htpasswd} is missing (scripts/services.sh start writes it)");
        var backend = Shell.Run("git", ["--exec-path"]).EnsureSuccess("git --exec-path").Stdout.Trim() + "/git-http-backend";
        var tmp = Path.Combine(_dir, "tmp");
        var conf = Path.Combine(_dir, "nginx.conf");
        await File.WriteAllTextAsync(conf, $$"""
            daemon off;
            master_process off;
            pid {{_dir}}/nginx.pid;
            error_log {{_dir}}/nginx-error.log warn;
            events { worker_connections 64; }
            http {
              access_log /dev/stderr;
              client_body_temp_path {{tmp}}/body;
              proxy_temp_path {{tmp}}/proxy;
              fastcgi_temp_path {{tmp}}/fastcgi;
              uwsgi_temp_path {{tmp}}/uwsgi;
              scgi_temp_path {{tmp}}/scgi;
              client_max_body_size 0;
              server {
                listen 127.0.0.1:{{Port}};
                auth_basic "vcs b";
                auth_basic_user_file {{htpasswd}};
                location ~ ^/git(/.*)$ {
                  include /etc/nginx/fastcgi_params;
                  fastcgi_pass unix:{{_dir}}/fcgiwrap.sock;
                  fastcgi_param SCRIPT_FILENAME {{backend}};
                  fastcgi_param PATH_INFO $1;
                  fastcgi_param GIT_PROJECT_ROOT {{Repos}};
                  fastcgi_param GIT_HTTP_EXPORT_ALL 1;
                  fastcgi_param REMOTE_USER $remote_user;
                  fastcgi_param HOME {{_dir}};
                }
                location / { return 404; }
              }
            }

            """);
        Launch(line => OnLine?.Invoke(line), "/usr/sbin/nginx", "-e", Path.Combine(_dir, "nginx-error.log"), "-p", _dir, "-c", conf);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await WaitReadyAsync(async () =>
        {
            try
            {
                using var r = await http.GetAsync(Url + "/");
                return r.StatusCode == HttpStatusCode.Unauthorized;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, "nginx (VCS B)");
    }

    /// <summary>A bare repository under <see cref="Repos"/> (e.g. <c>internal/e2e/NAME.git</c>).</summary>
    public string InitBare(string relative)
    {
        var path = Path.Combine(Repos, relative);
        Shell.Run("git", ["init", "-q", "--bare", path]).EnsureSuccess("init VCS B repository");
        return path;
    }

    public override void Dispose()
    {
        base.Dispose();
        _fcgiwrap.Dispose();
    }

    private sealed class Fcgiwrap(string socket) : ThrowAwayProcess
    {
        public async Task StartAsync()
        {
            Launch("/usr/sbin/fcgiwrap", "-f", "-c", "2", "-s", "unix:" + socket);
            await WaitReadyAsync(() => Task.FromResult(File.Exists(socket)), "fcgiwrap");
        }
    }
}
