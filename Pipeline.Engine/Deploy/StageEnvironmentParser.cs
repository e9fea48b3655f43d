using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Deploy;

/// <summary>
/// Reads a stage's <c>environment:</c> mapping (part of <c>stages:</c>, see the Lifecycle's
/// StageConfigParser), adding every error with file and line to the reader's errors:
/// <code>
/// environment:
///   kind: gitops
///   repository: https://git.example/environments/abnahme.git
///   credentialsFile: abnahme-git.cred        # default: internalGit.credentialsFile
///   branch: main
///   path: apps/fachverfahren
///   namespace: fachverfahren-abnahme
///   signingKey: keys/abnahme-deploy          # OpenSSH Ed25519 private key, unencrypted, mode 0600
///   committer: { name: Pipeline Abnahme, email: deploy-abnahme@example }
///   parameters: { replicas: "2", ingressHost: fv.abnahme.example }
///   probe: { url: https://fv.abnahme.example/version, expectStatus: 200, expectVersion: "{tag}", timeout: 5m, interval: 10s }
///
/// environment:
///   kind: docker
///   endpoint: unix:///run/docker-vorpruefung.sock
///   network: none
///   memory: 512MiB
///   cpus: 1
///   user: "10001:10001"
///   healthTimeout: 60s
///   testTimeout: 10m
///   parameters: { LOG_LEVEL: debug }
///   rules: { allowedKinds: [Deployment, Service, ConfigMap], readOnlyRootFilesystem: true }   # both kinds; default: the restricted set
///   hosts: { maxSchutzbedarf: hoch, dedicatedTo: shared }   # both kinds; required when tenants are configured
/// </code>
/// </summary>
public static class StageEnvironmentParser
{
    private static readonly Regex RepoPath = new(@"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", RegexOptions.CultureInvariant);
    private static readonly Regex Branch = new(@"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", RegexOptions.CultureInvariant);
    private static readonly Regex Namespace = new("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex ParameterName = new("^[A-Za-z_][A-Za-z0-9_.-]{0,63}$", RegexOptions.CultureInvariant);
    private static readonly Regex Network = new("^[a-z0-9][a-z0-9_.-]{0,40}$", RegexOptions.CultureInvariant);
    private static readonly Regex KindName = new("^[A-Z][A-Za-z0-9]{0,62}$", RegexOptions.CultureInvariant);

    /// <summary>The environment, or null when it has errors (added to <paramref name="m"/>'s errors).</summary>
    public static StageEnvironment? Parse(MappingReader m, string baseDir, bool checkFiles)
    {
        var before = m.Errors.All.Count;
        var kind = m.String("kind", required: true, hint: "gitops or docker");
        StageEnvironment? result = kind switch
        {
            "gitops" => GitOps(m, baseDir, checkFiles),
            "docker" => Docker(m),
            null => null,
            _ => Unknown(m, kind),
        };
        var rules = m.Mapping("rules") is { } r ? Rules(r) : null;
        if (result is not null && rules is not null) result = result with { Rules = rules };
        var hosts = m.Mapping("hosts") is { } h ? Tenancy.HostPolicy.Parse(h) : null;
        if (result is not null) result = result with { Hosts = hosts, Source = (m.File, m.Line) };
        m.Done();
        return m.Errors.All.Count > before ? null : result;
    }

    /// <summary><c>rules: { allowedKinds, readOnlyRootFilesystem }</c>; the Pod Security Standard "restricted" is not negotiable.</summary>
    private static Pipeline.Checkup.Manifests.ManifestPolicy? Rules(MappingReader r)
    {
        var policy = Pipeline.Checkup.Manifests.ManifestPolicy.Restricted;
        if (r.Has("allowedKinds"))
        {
            var kinds = r.StringList("allowedKinds");
            if (kinds.Count == 0) r.KeyError("allowedKinds", $"'{r.Path}.allowedKinds' must list at least one kind", "e.g. [Deployment, Service, ConfigMap]");
            foreach (var k in kinds.Where(k => !KindName.IsMatch(k) || k.EndsWith("List", StringComparison.Ordinal)))
                r.KeyError("allowedKinds", $"'{r.Path}.allowedKinds' has '{k}', which is not a Kubernetes kind name (List kinds are never allowed)");
            if (kinds.Distinct(StringComparer.Ordinal).Count() != kinds.Count) r.KeyError("allowedKinds", $"'{r.Path}.allowedKinds' lists a kind twice");
            policy = policy with { AllowedKinds = kinds };
        }

        if (r.Bool("readOnlyRootFilesystem") is { } ro) policy = policy with { RequireReadOnlyRootFilesystem = ro };
        r.Done();
        return policy;
    }

    private static StageEnvironment? Unknown(MappingReader m, string kind)
    {
        m.KeyError("kind", $"'{m.Path}.kind' must be gitops or docker, not '{kind}'", "leave 'environment' out for a stage that is only promoted");
        return null;
    }

    private static GitOpsEnvironment? GitOps(MappingReader m, string baseDir, bool checkFiles)
    {
        var repository = EngineSettingsLoader.HttpUrl(m, "repository");
        var credentials = File(m, "credentialsFile", baseDir, checkFiles);
        var branch = m.String("branch", Branch, "branch name") ?? "main";
        if (branch.Contains("..", StringComparison.Ordinal) || branch.EndsWith(".lock", StringComparison.Ordinal))
            m.KeyError("branch", $"'{m.Path}.branch' is not a valid branch name: '{branch}'");
        var path = m.String("path", RepoPath, "folder path in the repository ('/'-separated, no '..')", required: true);
        if (path is not null && path.Split('/').Any(p => p is "." or ".." || p.Equals(".git", StringComparison.OrdinalIgnoreCase)))
            m.KeyError("path", $"'{m.Path}.path' must not contain '.', '..' or '.git' segments: '{path}'");
        var ns = m.String("namespace", Namespace, "Kubernetes namespace (RFC 1123 label)", required: true);
        var key = File(m, "signingKey", baseDir, checkFiles, required: true);
        string name = "Pipeline Engine", email = "pipeline@localhost";
        if (m.Mapping("committer") is { } c)
        {
            name = c.String("name", required: true) ?? name;
            email = c.String("email", required: true) ?? email;
            if (name.Any(ch => char.IsControl(ch) || ch is '<' or '>') || email.Any(ch => char.IsControl(ch) || ch is '<' or '>' or ' '))
                c.Error($"'{c.Path}' name and email must not contain '<', '>' or control characters");
            c.Done();
        }

        var probe = m.Mapping("probe") is { } p ? Probe(p) : null;
        var parameters = Parameters(m);
        return repository is null || path is null || ns is null || key is null
            ? null
            : new GitOpsEnvironment(repository, credentials, branch, path, ns, key, name, email, probe, parameters);
    }

    private static HttpProbe? Probe(MappingReader p)
    {
        var url = EngineSettingsLoader.HttpUrl(p, "url");
        var status = p.Int("expectStatus", 100, 599) ?? 200;
        var version = p.String("expectVersion") ?? "{tag}";
        if (version.Length == 0 || version.Length > 256 || version.Any(char.IsControl))
            p.KeyError("expectVersion", $"'{p.Path}.expectVersion' must be 1 to 256 printable characters ({{tag}} stands for the delivery's tag)");
        var timeout = Duration(p, "timeout", TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(1), TimeSpan.FromHours(2));
        var interval = Duration(p, "interval", TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(10));
        p.Done();
        return url is null ? null : new HttpProbe(url, status, version, timeout, interval);
    }

    private static DockerEnvironment? Docker(MappingReader m)
    {
        Uri? endpoint = null;
        if (m.String("endpoint", required: true, hint: "unix:///path/to/docker.sock or tcp://host:2375") is { } e)
        {
            if (Pipeline.Engine.Deploy.Docker.DockerStageSettings.TryParseEndpoint(e, out var u)) endpoint = u;
            else m.KeyError("endpoint", $"'{m.Path}.endpoint' must be unix:///path/docker.sock or tcp://host:port, not '{e}'");
        }

        var network = m.String("network", Network, "Docker network name (lowercase, digits, '_', '.', '-')") ?? "none";
        if (network is "host" or "bridge")
            m.KeyError("network", $"'{m.Path}.network' must be 'none' or a network of the stage, not '{network}'", "the stage's containers never share the host's network");
        var memory = m.Size("memory") ?? 512L * 1024 * 1024;
        if (memory < 6L * 1024 * 1024) m.KeyError("memory", $"'{m.Path}.memory' must be at least 6MiB (Docker's minimum)");
        var cpus = 1.0;
        if (m.String("cpus") is { } ct)
        {
            if (double.TryParse(ct, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var v) && v is >= 0.01 and <= 64) cpus = v;
            else m.KeyError("cpus", $"'{m.Path}.cpus' must be a number from 0.01 to 64, not '{ct}'");
        }

        var user = m.String("user");
        if (user is not null && !Pipeline.Engine.Deploy.Docker.DockerStageSettings.IsNonRootUser(user, out var why))
            m.KeyError("user", $"'{m.Path}.user' {why}", "leave it out to run as the image's own (numeric, non-root) user");
        var health = Duration(m, "healthTimeout", TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        var tests = Duration(m, "testTimeout", TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(1), TimeSpan.FromHours(6));
        var parameters = Parameters(m);
        return endpoint is null ? null : new DockerEnvironment(endpoint, network, memory, cpus, user, health, tests, parameters);
    }

    private static IReadOnlyDictionary<string, string> Parameters(MappingReader m)
    {
        var map = m.StringMap("parameters");
        foreach (var (k, v) in map)
        {
            if (!ParameterName.IsMatch(k)) m.KeyError("parameters", $"'{m.Path}.parameters' has the invalid name '{k}' (letters, digits, '_', '.', '-')");
            if (v.Length > 4096 || v.Any(c => char.IsControl(c) && c is not '\n' and not '\t')) m.KeyError("parameters", $"'{m.Path}.parameters.{k}' is longer than 4096 characters or has control characters");
        }

        return map;
    }

    /// <summary>A duration like 500ms, 30s, 5m, 2h; <paramref name="fallback"/> when absent.</summary>
    internal static TimeSpan Duration(MappingReader m, string key, TimeSpan fallback, TimeSpan min, TimeSpan max)
    {
        var s = m.String(key);
        if (s is null) return fallback;
        if (TryParseDuration(s, out var d) && d >= min && d <= max) return d;
        m.KeyError(key, $"'{m.Path}.{key}' must be a duration such as 500ms, 30s, 5m or 2h between {min} and {max}, not '{s}'");
        return fallback;
    }

    public static bool TryParseDuration(string s, out TimeSpan value)
    {
        value = default;
        var unit = s.EndsWith("ms", StringComparison.Ordinal) ? "ms" : s.Length > 0 ? s[^1..] : "";
        if (!int.TryParse(s[..^unit.Length], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0) return false;
        value = unit switch
        {
            "ms" => TimeSpan.FromMilliseconds(n),
            "s" => TimeSpan.FromSeconds(n),
            "m" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            _ => TimeSpan.Zero,
        };
        return value > TimeSpan.Zero;
    }

    private static string? File(MappingReader m, string key, string baseDir, bool check, bool required = false)
    {
        var s = m.String(key, required);
        if (s is null) return null;
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, s));
        if (check && !System.IO.File.Exists(full)) m.KeyError(key, $"file '{full}' named by '{m.Path}.{key}' does not exist");
        return full;
    }
}
