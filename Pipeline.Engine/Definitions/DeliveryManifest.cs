using System.Globalization;
using System.Text.RegularExpressions;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Definitions;

/// <summary>
/// The delivery's own description of the images to build (<c>delivery.yaml</c> at the root of the
/// tagged tree, the operator's CI/CD convention). Supplier-controlled, so parsed strictly: unknown
/// keys, paths leaving the delivery and root users are errors, all reported at once.
/// </summary>
public sealed record DeliveryManifest(int Version, IReadOnlyList<ImageSpec> Images)
{
    public const string FileName = "delivery.yaml";

    /// <summary>The optional <c>deployment:</c> section (manifests, stage parameters, acceptance tests); null when absent.</summary>
    public DeploymentSpec? Deployment { get; init; }
}

/// <summary>One image to build from delivered files on an approved base.</summary>
public sealed record ImageSpec(
    string Name,
    string Base,
    IReadOnlyList<FileMapping> Files,
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Cmd,
    string? WorkingDir,
    string User,
    IReadOnlyDictionary<string, string> Env,
    IReadOnlyList<string> Ports,
    IReadOnlyDictionary<string, string> Labels)
{
    /// <summary>Target platforms as <c>os/arch[/variant]</c>; one image each, under one index when more than one.</summary>
    public IReadOnlyList<string> Platforms { get; init; } = [DeliveryManifestParser.DefaultPlatform];

    /// <summary>Exec-form health check command for the smoke test (Docker <c>Healthcheck</c> in the config); empty when none.</summary>
    public IReadOnlyList<string> Healthcheck { get; init; } = [];
}

/// <summary>
/// A delivered file or folder (<see cref="From"/>, relative) copied to <see cref="To"/> (absolute) in the
/// image, files with <see cref="FileMode"/>, folders with <see cref="DirMode"/>, all owned by root.
/// <see cref="From"/> may contain <c>{platform}</c>, replaced by <c>os-arch[-variant]</c> (e.g. <c>linux-arm64</c>).
/// </summary>
public sealed record FileMapping(string From, string To, int FileMode)
{
    public const string PlatformPlaceholder = "{platform}";

    public int DirMode { get; init; } = 0b111_101_101;

    /// <summary>The delivered path for one platform (<c>linux/arm64</c> → <c>bin/linux-arm64</c>).</summary>
    public string FromFor(string platform) => From.Replace(PlatformPlaceholder, platform.Replace('/', '-'), StringComparison.Ordinal);
}

public static class DeliveryManifestParser
{
    private static readonly Regex ImageName = new("^[a-z0-9]+([._-][a-z0-9]+)*$", RegexOptions.CultureInvariant);
    private static readonly Regex UserPattern = new(@"^\d{1,10}(:\d{1,10})?$", RegexOptions.CultureInvariant);
    private static readonly Regex PortPattern = new(@"^\d{1,5}(/(tcp|udp))?$", RegexOptions.CultureInvariant);
    private static readonly Regex EnvName = new("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant);
    private static readonly Regex ModePattern = new("^0?[0-7]{3}$", RegexOptions.CultureInvariant);
    private static readonly Regex PlatformPattern = new("^linux/(amd64|arm64|arm|386|ppc64le|s390x|riscv64)(/v[5-8])?$", RegexOptions.CultureInvariant);

    /// <summary>The platform of an image that names none.</summary>
    public const string DefaultPlatform = "linux/amd64";

    /// <summary>Upper bound of files below one mapped folder (a delivery is not a file system dump).</summary>
    public const int MaxFilesPerMapping = 100_000;

    /// <summary>
    /// Parses <c>delivery.yaml</c> from <paramref name="deliveryRoot"/> and checks it against the
    /// delivered tree and the pipeline's allowed base images.
    /// </summary>
    /// <exception cref="ConfigurationException">code CFG-INVALID, with every error and its line.</exception>
    public static DeliveryManifest Load(string deliveryRoot, IReadOnlyCollection<string> allowedBaseImages, bool allowRoot = false)
    {
        var errors = new ConfigErrors();
        var path = Path.Combine(deliveryRoot, DeliveryManifest.FileName);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            errors.Add(DeliveryManifest.FileName, 0, 0, "the delivery has no delivery.yaml", "the supplier must describe the images to build in delivery.yaml at the top of the tag");
            errors.ThrowIfAny();
        }

        if (info.Length > YamlReader.MaxBytes)
        {
            errors.Add(DeliveryManifest.FileName, 0, 0, $"delivery.yaml is larger than {YamlReader.MaxBytes} bytes");
            errors.ThrowIfAny();
        }

        var m = Parse(File.ReadAllText(path), deliveryRoot, allowedBaseImages, errors, allowRoot);
        errors.ThrowIfAny();
        return m!;
    }

    /// <summary>Parses and checks <c>delivery.yaml</c> text; every problem goes to <paramref name="errors"/> with its line.</summary>
    public static DeliveryManifest? Parse(string text, string deliveryRoot, IReadOnlyCollection<string> allowedBaseImages, ConfigErrors errors, bool allowRoot = false)
    {
        var root = YamlReader.Load(DeliveryManifest.FileName, text, errors);
        if (root is null) return null;
        var before = errors.All.Count;
        var version = root.Int("version", 1, 1, required: true) ?? 1;
        var images = new List<ImageSpec>();
        foreach (var im in root.MappingList("images", required: true))
        {
            var name = im.String("name", ImageName, "image name (lowercase letters, digits, '.', '_', '-')", required: true);
            if (name is not null && images.Any(i => i.Name == name)) im.KeyError("name", $"image name '{name}' is used twice");
            var baseRef = im.String("base", required: true, hint: "an allowed base image, e.g. base/busybox@sha256:<digest>");
            if (baseRef is not null && !allowedBaseImages.Contains(baseRef))
                im.KeyError("base", $"base image '{baseRef}' is not on this pipeline's list of allowed base images",
                    allowedBaseImages.Count == 0 ? "the operator must allow it in the pipeline definition (images.allowedBaseImages)" : "allowed: " + string.Join(", ", allowedBaseImages));

            var platforms = im.Has("platforms") ? im.StringList("platforms") : [DefaultPlatform];
            if (im.Has("platforms") && platforms.Count == 0) im.KeyError("platforms", "'platforms' must list at least one platform", "e.g. [linux/amd64, linux/arm64]");
            foreach (var pl in platforms.Where(pl => !PlatformPattern.IsMatch(pl)))
                im.KeyError("platforms", $"platform '{pl}' is not supported", "linux/<arch>[/variant] with arch one of amd64, arm64, arm, 386, ppc64le, s390x, riscv64");
            if (platforms.Distinct(StringComparer.Ordinal).Count() != platforms.Count) im.KeyError("platforms", "a platform is listed twice");

            var files = new List<FileMapping>();
            foreach (var f in im.MappingList("files", required: true))
            {
                var from = f.String("from", required: true);
                var to = f.String("to", required: true);
                var modeText = f.String("mode", ModePattern, "file mode (octal, e.g. \"0755\"; no setuid/setgid/sticky bits)");
                var dirModeText = f.String("dirMode", ModePattern, "folder mode (octal, e.g. \"0755\"; no setuid/setgid/sticky bits)");
                if (from is not null && !IsSafeRelative(from.Replace(FileMapping.PlatformPlaceholder, "p", StringComparison.Ordinal)))
                    f.KeyError("from", $"'from: {from}' must be a relative path inside the delivery (no '..', no leading '/')");
                else if (from is not null)
                {
                    if (from.Contains('{') && !from.Contains(FileMapping.PlatformPlaceholder, StringComparison.Ordinal))
                        f.KeyError("from", $"'from: {from}' has an unknown placeholder; only {FileMapping.PlatformPlaceholder} is known");
                    foreach (var pl in platforms.Where(pl => PlatformPattern.IsMatch(pl)))
                    {
                        var rel = new FileMapping(from, "/", 0).FromFor(pl);
                        var suffix = rel == from ? "" : $" (platform {pl})";
                        if (!ExistsAsRegular(deliveryRoot, rel))
                            f.KeyError("from", $"'from: {rel}'{suffix} does not exist in the delivery (or is not a regular file or folder)");
                        else if (CheckTree(deliveryRoot, rel) is { } problem)
                            f.KeyError("from", $"'from: {rel}'{suffix}: {problem}", "deliver regular files and folders only; symbolic links, devices, FIFOs and sockets are not accepted");
                        if (from == rel) break; // no placeholder: the same path for every platform
                    }
                }
                if (to is not null && !IsSafeAbsolute(to))
                    f.KeyError("to", $"'to: {to}' must be an absolute path in the image without '..' segments");
                f.Done();
                if (from is not null && to is not null)
                    files.Add(new FileMapping(from.TrimEnd('/'), to, modeText is null ? 0b111_101_101 : Convert.ToInt32(modeText, 8))
                    {
                        DirMode = dirModeText is null ? 0b111_101_101 : Convert.ToInt32(dirModeText, 8),
                    });
            }

            var entrypoint = im.StringList("entrypoint");
            var cmd = im.StringList("cmd");
            var workingDir = im.String("workingDir");
            if (workingDir is not null && !IsSafeAbsolute(workingDir)) im.KeyError("workingDir", $"'workingDir: {workingDir}' must be an absolute path");
            var user = im.String("user", UserPattern, "numeric user (uid or uid:gid, e.g. \"10001\")", required: true);
            if (!allowRoot && user is not null && UserPattern.IsMatch(user) && uint.Parse(user.Split(':')[0], CultureInfo.InvariantCulture) == 0)
                im.KeyError("user", "images must not run as root (uid 0)", "use a numeric non-root user such as 10001, or the operator sets images.allowRoot: true in the pipeline definition");
            var healthcheck = im.StringList("healthcheck");
            if (im.Has("healthcheck") && (healthcheck.Count == 0 || healthcheck[0].Length == 0 || !healthcheck[0].StartsWith('/')))
                im.KeyError("healthcheck", "'healthcheck' must be an exec-form command whose first element is an absolute path", "e.g. [/opt/app/app, --health]");
            var env = im.StringMap("env");
            foreach (var k in env.Keys.Where(k => !EnvName.IsMatch(k)))
                im.KeyError("env", $"environment variable name '{k}' is not valid");
            var ports = im.StringList("ports");
            foreach (var p in ports)
            {
                if (!PortPattern.IsMatch(p) || int.Parse(p.Split('/')[0], CultureInfo.InvariantCulture) is < 1 or > 65535)
                    im.KeyError("ports", $"port '{p}' must be a number from 1 to 65535, optionally with /tcp or /udp");
            }

            var labels = im.StringMap("labels");
            foreach (var k in labels.Keys.Where(k => k.StartsWith("org.opencontainers.image.", StringComparison.Ordinal)))
                im.KeyError("labels", $"label '{k}' is set by the engine and cannot be given by the delivery");
            im.Done();

            if (name is not null && baseRef is not null && user is not null)
                images.Add(new ImageSpec(name, baseRef, files, entrypoint, cmd, workingDir, user, env,
                    ports.Select(p => p.Contains('/') ? p : p + "/tcp").ToArray(), labels)
                {
                    Platforms = platforms,
                    Healthcheck = healthcheck,
                });
        }

        var deployment = root.Mapping("deployment") is { } d
            ? DeploymentSpecParser.Parse(d, deliveryRoot, images.Select(i => i.Name).ToList())
            : null;
        root.Done();
        return errors.All.Count > before ? null : new DeliveryManifest(version, images) { Deployment = deployment };
    }

    internal static bool IsSafeRelative(string p) =>
        p.Length > 0 && !p.StartsWith('/') && !p.Contains('\\') && !p.Contains('\0')
        && p.TrimEnd('/').Split('/').All(s => s.Length > 0 && s != "." && s != ".." && !s.Equals(".git", StringComparison.OrdinalIgnoreCase));

    internal static bool IsSafeAbsolute(string p) =>
        p.StartsWith('/') && !p.Contains('\\') && !p.Contains('\0') && (p == "/" || p.TrimEnd('/')[1..].Split('/').All(s => s.Length > 0 && s != "." && s != ".."));

    /// <summary>The first symbolic link or special file below a mapped folder (or the file itself), or null when clean.</summary>
    internal static string? CheckTree(string root, string rel)
    {
        var full = Path.GetFullPath(Path.Combine(root, rel));
        var rootFull = Path.GetFullPath(root).TrimEnd('/');
        if (File.Exists(full)) return null; // ExistsAsRegular checked it is not a link
        var count = 0;
        foreach (var entry in new DirectoryInfo(full).EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false }))
        {
            var shown = Path.GetRelativePath(root, entry.FullName);
            if (++count > MaxFilesPerMapping) return $"more than {MaxFilesPerMapping} entries";
            if (entry.LinkTarget is { } target)
            {
                var resolved = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(entry.FullName)!, target));
                return resolved == rootFull || resolved.StartsWith(rootFull + "/", StringComparison.Ordinal)
                    ? $"'{shown}' is a symbolic link"
                    : $"'{shown}' is a symbolic link pointing outside the delivery";
            }
            if (entry is FileInfo && (File.GetUnixFileMode(entry.FullName) & (UnixFileMode.SetUser | UnixFileMode.SetGroup)) != 0)
                return $"'{shown}' has the setuid or setgid bit";
            if (entry is FileInfo fi && !IsRegularFile(fi)) return $"'{shown}' is a device, FIFO or socket";
        }
        return null;
    }

    private static bool IsRegularFile(FileInfo info) => Pipeline.Registry.Layers.SourceFiles.IsRegularFile(info.FullName);

    private static bool ExistsAsRegular(string root, string rel)
    {
        var full = Path.GetFullPath(Path.Combine(root, rel));
        if (!full.StartsWith(Path.GetFullPath(root).TrimEnd('/') + "/", StringComparison.Ordinal)) return false;
        var info = new FileInfo(full);
        if (info.Exists) return info.LinkTarget is null;
        var dir = new DirectoryInfo(full);
        return dir.Exists && dir.LinkTarget is null;
    }
}
