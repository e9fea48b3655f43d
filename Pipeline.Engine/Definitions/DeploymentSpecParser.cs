using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Checkup.Manifests;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Definitions;

/// <summary>
/// Strict parsing of the <c>deployment:</c> section of <c>delivery.yaml</c> (supplier input):
/// unknown keys, paths leaving the delivery, symbolic links, unknown images and bad values are
/// errors, each with its line and a <c>DEPLOY-SPEC-…</c> code at the start of its message.
/// </summary>
public static class DeploymentSpecParser
{
    public const string PathInvalid = "DEPLOY-SPEC-PATH";
    public const string FolderInvalid = "DEPLOY-SPEC-FOLDER";
    public const string ParameterInvalid = "DEPLOY-SPEC-PARAMETER";
    public const string TargetInvalid = "DEPLOY-SPEC-TARGET";
    public const string ImageUnknown = "DEPLOY-SPEC-IMAGE";
    public const string TestInvalid = "DEPLOY-SPEC-TEST";

    public const int MaxParameters = 100;
    public const int MaxMocks = 20;
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromHours(2);
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(10);

    private static readonly Regex ParameterName = new("^[a-z][a-zA-Z0-9_-]{0,62}$", RegexOptions.CultureInvariant);
    private static readonly Regex KindPattern = new("^[A-Z][A-Za-z0-9]{0,62}$", RegexOptions.CultureInvariant);
    private static readonly Regex ObjectName = new("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex DnsLabel = new("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex HostName = new(@"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex CpuPattern = new(@"^([0-9]{1,6}m|[0-9]{1,4}(\.[0-9]{1,3})?)$", RegexOptions.CultureInvariant);
    private static readonly Regex MemoryPattern = new("^[0-9]{1,7}(Ki|Mi|Gi|Ti|k|M|G|T)?$", RegexOptions.CultureInvariant);
    private static readonly Regex EnvName = new("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant);
    private static readonly Regex ReplicasPattern = new("^(0|[1-9][0-9]{0,3})$", RegexOptions.CultureInvariant);
    private static readonly Regex DurationPattern = new("^([0-9]{1,5})(s|m|h)$", RegexOptions.CultureInvariant);

    /// <summary>Parses the section; problems go to the reader's error list. Null when there were any.</summary>
    public static DeploymentSpec? Parse(MappingReader section, string deliveryRoot, IReadOnlyCollection<string> imageNames)
    {
        var before = section.Errors.All.Count;
        var folder = section.String("manifests", required: true, hint: "the folder holding the Kubernetes manifests, e.g. deploy/k8s");
        ManifestLayout layout = ManifestLayout.Plain;
        if (folder is not null && CheckFolder(section, "manifests", folder, deliveryRoot))
            layout = ManifestLoader.IsKustomizeBase(Path.Combine(deliveryRoot, folder)) ? ManifestLayout.Kustomize : ManifestLayout.Plain;

        var parameters = new List<DeploymentParameter>();
        var list = section.MappingList("parameters");
        if (list.Count > MaxParameters) section.KeyError("parameters", $"{ParameterInvalid}: more than {MaxParameters} parameters");
        foreach (var p in list.Take(MaxParameters))
        {
            var name = p.String("name", ParameterName, "parameter name (a letter, then letters, digits, '_' or '-')", required: true);
            if (name is not null && parameters.Any(x => x.Name == name)) p.KeyError("name", $"{ParameterInvalid}: parameter '{name}' is declared twice");
            var kind = p.Enum<ParameterKind>("kind", required: true);
            var def = p.String("default", required: true, hint: "the value used when the stage sets none");
            if (kind is not null && def is not null && CheckValue(kind.Value, def) is { } why) p.KeyError("default", $"{ParameterInvalid}: default of '{name}': {why}");
            var targets = new List<ParameterTarget>();
            foreach (var t in p.MappingList("targets", required: true))
            {
                var tk = t.String("kind", KindPattern, "Kubernetes kind (e.g. Deployment)", required: true);
                var tn = t.String("name", ObjectName, "Kubernetes object name", required: true);
                var tp = t.String("path", required: true, hint: "e.g. spec.replicas or spec.template.spec.containers[name=web].resources.limits.memory");
                t.Done();
                if (tk is null || tn is null || tp is null) continue;
                var target = new ParameterTarget(tk, tn, tp);
                if (kind is not null && CheckTarget(kind.Value, target) is { } bad) t.KeyError("path", $"{TargetInvalid}: {bad}");
                else targets.Add(target);
            }
            p.Done();
            if (name is not null && kind is not null && def is not null)
                parameters.Add(new DeploymentParameter(name, kind.Value, def, targets, p.Line));
        }

        AcceptanceTestSpec? tests = null;
        if (section.Mapping("acceptanceTests") is { } at) tests = ParseTests(at, deliveryRoot, imageNames);
        section.Done();
        return section.Errors.All.Count > before || folder is null ? null : new DeploymentSpec(new ManifestSource(folder.TrimEnd('/'), layout), parameters, tests);
    }

    private static AcceptanceTestSpec? ParseTests(MappingReader at, string deliveryRoot, IReadOnlyCollection<string> imageNames)
    {
        var image = Image(at, "image", imageNames);
        var command = Command(at, "command");
        var testData = at.String("testData");
        if (testData is not null && !CheckFolder(at, "testData", testData, deliveryRoot)) testData = null;
        var mount = at.String("testDataMount") ?? AcceptanceTestSpec.DefaultTestDataMount;
        if (!DeliveryManifestParser.IsSafeAbsolute(mount) || mount == "/")
            at.KeyError("testDataMount", $"{TestInvalid}: 'testDataMount: {mount}' must be an absolute path other than / without '..'");
        var env = at.StringMap("env");
        foreach (var k in env.Keys.Where(k => !EnvName.IsMatch(k))) at.KeyError("env", $"{TestInvalid}: environment variable name '{k}' is not valid");

        var mocks = new List<MockSpec>();
        var mockList = at.MappingList("mocks");
        if (mockList.Count > MaxMocks) at.KeyError("mocks", $"{TestInvalid}: more than {MaxMocks} mocks");
        foreach (var m in mockList.Take(MaxMocks))
        {
            var name = m.String("name", DnsLabel, "mock name (a DNS label: lowercase letters, digits, '-'); the test reaches the mock by this host name", required: true);
            if (name is not null && mocks.Any(x => x.Name == name)) m.KeyError("name", $"{TestInvalid}: mock '{name}' is declared twice");
            var mi = Image(m, "image", imageNames);
            var mc = Command(m, "command");
            var hc = Command(m, "healthcheck");
            var port = m.Int("port", 1, 65535, required: true);
            m.Done();
            if (name is not null && mi is not null && port is not null) mocks.Add(new MockSpec(name, mi, mc, hc, port.Value));
        }

        var timeout = DefaultTimeout;
        if (at.String("timeout") is { } tt)
        {
            if (ParseDuration(tt) is { } d && d >= TimeSpan.FromSeconds(1) && d <= MaxTimeout) timeout = d;
            else at.KeyError("timeout", $"{TestInvalid}: 'timeout: {tt}' must be a duration such as 90s, 10m or 1h, at most {MaxTimeout.TotalHours:0}h");
        }

        IReadOnlyList<int> exitCodes = [0];
        if (at.Mapping("pass") is { } pass)
        {
            var codes = pass.StringList("exitCodes", required: true);
            var parsed = new List<int>();
            foreach (var c in codes)
            {
                if (int.TryParse(c, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 255) parsed.Add(n);
                else pass.KeyError("exitCodes", $"{TestInvalid}: exit code '{c}' must be a whole number from 0 to 255");
            }
            pass.Done();
            if (parsed.Count > 0) exitCodes = parsed.Distinct().Order().ToList();
        }

        at.Done();
        return image is null ? null : new AcceptanceTestSpec(image, command, testData?.TrimEnd('/'), mount, mocks, timeout, exitCodes) { Env = env };
    }

    /// <summary>Why <paramref name="value"/> is not valid for a parameter of <paramref name="kind"/>, or null when it is.</summary>
    public static string? CheckValue(ParameterKind kind, string value) => kind switch
    {
        // No leading zeros: kubectl's YAML 1.1 reader takes 010 for octal 8.
        ParameterKind.Replicas => ReplicasPattern.IsMatch(value) && int.Parse(value, CultureInfo.InvariantCulture) <= 1000
            ? null : $"'{Short(value)}' is not a number of replicas (0 to 1000, no leading zeros)",
        ParameterKind.Cpu => CpuPattern.IsMatch(value) ? null : $"'{Short(value)}' is not a CPU quantity (e.g. 250m, 1, 1.5)",
        ParameterKind.Memory => MemoryPattern.IsMatch(value) ? null : $"'{Short(value)}' is not a memory quantity (e.g. 256Mi, 1Gi)",
        ParameterKind.Config => value.Length <= 4096 && value.All(c => c == '\n' || c == '\t' || (c >= ' ' && c != '\u007f'))
            ? null : "a configuration value must be printable text of at most 4096 characters",
        ParameterKind.SecretRef => value.Length <= 253 && ObjectName.IsMatch(value) ? null : $"'{Short(value)}' is not a Secret name",
        ParameterKind.IngressHost => value.Length <= 253 && HostName.IsMatch(value) ? null : $"'{Short(value)}' is not a host name",
        _ => "unknown parameter kind",
    };

    /// <summary>Why a parameter of <paramref name="kind"/> may not set <paramref name="target"/>, or null when it may.</summary>
    public static string? CheckTarget(ParameterKind kind, ParameterTarget target)
    {
        if (FieldPath.TryParse(target.Path) is not { } path)
            return $"'{Short(target.Path)}' is not a field path (keys, [N] and [name=value] joined by '.')";
        var keys = path.Keys;
        var last = path.Segments[^1] is FieldPath.Key k ? k.Name : null;
        var ok = kind switch
        {
            ParameterKind.Replicas => last == "replicas",
            ParameterKind.Cpu => last == "cpu" && keys.Count >= 3 && keys[^3] == "resources" && keys[^2] is "requests" or "limits",
            ParameterKind.Memory => last == "memory" && keys.Count >= 3 && keys[^3] == "resources" && keys[^2] is "requests" or "limits",
            ParameterKind.Config => (target.Kind == "ConfigMap" && path.Segments.Count == 2 && keys[0] == "data")
                || (last == "value" && path.Segments.Count >= 3 && path.Segments[^2] is FieldPath.Match { Field: "name" } && path.Segments[^3] is FieldPath.Key { Name: "env" }),
            ParameterKind.SecretRef => last == "secretName" || (last == "name" && keys.Count >= 2 && keys[^2] is "secretKeyRef" or "secretRef"),
            ParameterKind.IngressHost => target.Kind == "Ingress" && ((last == "host" && keys.Contains("rules")) || (keys[^1] == "hosts" && path.Segments[^1] is FieldPath.Index)),
            _ => false,
        };
        return ok ? null : kind switch
        {
            ParameterKind.Replicas => "a replicas parameter may only set a field named 'replicas'",
            ParameterKind.Cpu or ParameterKind.Memory => $"a {YamlKebab(kind)} parameter may only set resources.requests.{YamlKebab(kind)} or resources.limits.{YamlKebab(kind)}",
            ParameterKind.Config => "a config parameter may only set data.<key> of a ConfigMap or env[name=X].value",
            ParameterKind.SecretRef => "a secret-ref parameter may only set secretKeyRef.name, secretRef.name or secretName",
            _ => "an ingress-host parameter may only set spec.rules[N].host or spec.tls[N].hosts[N] of an Ingress",
        };
    }

    private static string YamlKebab(ParameterKind k) => k.ToString().ToLowerInvariant();

    internal static TimeSpan? ParseDuration(string text)
    {
        var m = DurationPattern.Match(text);
        if (!m.Success) return null;
        var n = int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "s" => TimeSpan.FromSeconds(n), "m" => TimeSpan.FromMinutes(n), _ => TimeSpan.FromHours(n) };
    }

    private static string? Image(MappingReader r, string key, IReadOnlyCollection<string> imageNames)
    {
        var name = r.String(key, required: true, hint: "the name of one of the delivery's images: " + string.Join(", ", imageNames));
        if (name is null || imageNames.Contains(name)) return name;
        r.KeyError(key, $"{ImageUnknown}: image '{Short(name)}' is not one of the delivery's images", "declare it under images: (a test image is built like any other); known: " + string.Join(", ", imageNames));
        return null;
    }

    private static IReadOnlyList<string> Command(MappingReader r, string key)
    {
        var cmd = r.StringList(key);
        if (r.Has(key) && (cmd.Count == 0 || !cmd[0].StartsWith('/')))
            r.KeyError(key, $"{TestInvalid}: '{key}' must be an exec-form command whose first element is an absolute path", "e.g. [/opt/tests/run, --all]");
        return cmd;
    }

    /// <summary>A relative folder inside the delivery, no symbolic links or special files in it.</summary>
    private static bool CheckFolder(MappingReader r, string key, string rel, string deliveryRoot)
    {
        if (!DeliveryManifestParser.IsSafeRelative(rel))
        {
            r.KeyError(key, $"{PathInvalid}: '{key}: {Short(rel)}' must be a relative path inside the delivery (no '..', no leading '/')");
            return false;
        }

        var full = Path.Combine(deliveryRoot, rel);
        var parts = rel.TrimEnd('/').Split('/');
        for (var i = 1; i <= parts.Length; i++)
        {
            var p = Path.Combine(deliveryRoot, string.Join('/', parts[..i]));
            if (new FileInfo(p).LinkTarget is not null || new DirectoryInfo(p).LinkTarget is not null)
            {
                r.KeyError(key, $"{FolderInvalid}: '{key}: {rel}' goes through a symbolic link ('{string.Join('/', parts[..i])}')", "deliver regular folders and files only");
                return false;
            }
        }

        if (!Directory.Exists(full))
        {
            r.KeyError(key, $"{FolderInvalid}: '{key}: {rel}' is not a folder in the delivery");
            return false;
        }

        if (DeliveryManifestParser.CheckTree(deliveryRoot, rel.TrimEnd('/')) is { } problem)
        {
            r.KeyError(key, $"{FolderInvalid}: '{key}: {rel}': {problem}", "deliver regular files and folders only; symbolic links, devices, FIFOs and sockets are not accepted");
            return false;
        }

        return true;
    }

    private static string Short(string v) => v.Length <= 60 ? v : v[..57] + "...";
}
