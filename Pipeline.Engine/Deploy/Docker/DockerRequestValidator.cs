using System.Text.RegularExpressions;
using Pipeline.Registry;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Deploy.Docker;

/// <summary>
/// Checks a <see cref="DockerRunRequest"/> (derived from the delivery: hostile) against the
/// stage's settings and returns every problem at once.
/// </summary>
internal static partial class DockerRequestValidator
{
    public const int MaxMocks = 8;
    public const int MaxArgs = 64;
    public const int MaxArgLength = 4096;
    public const int MaxEnv = 64;

    public static IReadOnlyList<string> Validate(DockerRunRequest request, DockerStageSettings settings)
    {
        var problems = new List<string>();
        Label("deliveryId", request.DeliveryId, problems);
        Label("stage", request.Stage, problems);
        if (request.App is null) problems.Add("app is missing");
        if (request.Test is null) problems.Add("test is missing");
        var mocks = request.Mocks ?? [];
        if (mocks.Count > MaxMocks) problems.Add($"at most {MaxMocks} mocks are allowed, {mocks.Count} declared");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (spec, role) in All(request))
        {
            var where = $"{role.ToString().ToLowerInvariant()} '{DockerStageSettings.Printable(spec.Name)}'";
            if (spec.Name is null || !Name().IsMatch(spec.Name)) problems.Add($"{where}: name must match [a-z][a-z0-9-]{{0,30}}");
            else if (!names.Add(spec.Name)) problems.Add($"{where}: name is used twice");
            if (!TryParseImage(spec.Image, settings.Registry, out _, out var why)) problems.Add($"{where}: {why}");
            Args($"{where} command", spec.Command, problems);
            Args($"{where} healthcheck", spec.Healthcheck, problems);
            if (spec.Environment is { } env)
            {
                if (env.Count > MaxEnv) problems.Add($"{where}: at most {MaxEnv} environment values");
                foreach (var (k, v) in env)
                {
                    if (!EnvName().IsMatch(k ?? "")) problems.Add($"{where}: environment name '{DockerStageSettings.Printable(k)}' must match [A-Za-z_][A-Za-z0-9_]{{0,63}}");
                    if (v is null || v.Length > MaxArgLength || v.Contains('\0')) problems.Add($"{where}: environment value of '{DockerStageSettings.Printable(k)}' is missing, too long or contains NUL");
                }
            }
        }
        if (request.PassExitCodes is not { Count: > 0 } codes) problems.Add("passExitCodes must name at least one exit code");
        else if (codes.Any(c => c is < 0 or > 255)) problems.Add("passExitCodes must be between 0 and 255");
        if (request.TestTimeout is { } t && t <= TimeSpan.Zero) problems.Add("the test timeout must be positive");
        if (request.TestDataPath is { } data)
        {
            if (!Path.IsPathFullyQualified(data)) problems.Add($"test data folder '{DockerStageSettings.Printable(data)}' must be an absolute path");
            else if (!Directory.Exists(data)) problems.Add($"test data folder '{DockerStageSettings.Printable(data)}' does not exist");
            else if (Path.GetFullPath(data) == Path.GetPathRoot(data)) problems.Add("the test data folder must not be the root of the file system");
            else if (data.Contains(',') || data.Contains(':')) problems.Add("the test data folder's path must not contain ',' or ':'");
        }
        return problems;
    }

    /// <summary>The mocks, the app and the test with their roles, skipping missing ones.</summary>
    public static IEnumerable<(DockerContainerSpec Spec, DockerContainerRole Role)> All(DockerRunRequest request)
    {
        foreach (var m in request.Mocks ?? []) if (m is not null) yield return (m, DockerContainerRole.Mock);
        if (request.App is not null) yield return (request.App, DockerContainerRole.App);
        if (request.Test is not null) yield return (request.Test, DockerContainerRole.Test);
    }

    /// <summary>
    /// Accepts exactly <c>{registry}/{repository}@sha256:{64 hex}</c> with the stage's registry.
    /// Tags are refused: what runs must be the digest that was scanned.
    /// </summary>
    public static bool TryParseImage(string? image, string registry, out (string Repository, Digest Digest) parsed, out string reason)
    {
        parsed = default;
        reason = "";
        var at = image?.IndexOf('@', StringComparison.Ordinal) ?? -1;
        if (image is null || at < 0)
        {
            reason = $"image '{DockerStageSettings.Printable(image)}' must be pinned by digest (registry/repository@sha256:…)";
            return false;
        }
        var name = image[..at];
        if (!name.StartsWith(registry + "/", StringComparison.Ordinal))
        {
            reason = $"image '{DockerStageSettings.Printable(image)}' is not in the stage's registry {registry}";
            return false;
        }
        if (!Digest.TryParse(image[(at + 1)..], out var digest, out _) || digest.Algorithm != Digest.Sha256)
        {
            reason = $"image '{DockerStageSettings.Printable(image)}' must end in @sha256:<64 hex digits>";
            return false;
        }
        var repository = name[(registry.Length + 1)..];
        try
        {
            References.ValidateRepository(repository);
        }
        catch (RegistryException)
        {
            reason = $"image '{DockerStageSettings.Printable(image)}' has an invalid repository name";
            return false;
        }
        parsed = (repository, digest);
        return true;
    }

    private static void Label(string what, string? value, List<string> problems)
    {
        if (string.IsNullOrWhiteSpace(value) || value.Length > 200 || value.Any(char.IsControl))
            problems.Add($"{what} must be 1 to 200 printable characters");
    }

    private static void Args(string where, IReadOnlyList<string>? args, List<string> problems)
    {
        if (args is null) return;
        if (args.Count is 0 or > MaxArgs) problems.Add($"{where} must have 1 to {MaxArgs} arguments");
        else if (args.Any(a => a is null || a.Length > MaxArgLength || a.Contains('\0'))) problems.Add($"{where}: an argument is missing, longer than {MaxArgLength} characters or contains NUL");
        else if (args[0].Length == 0) problems.Add($"{where}: the program must not be empty");
    }

    [GeneratedRegex("^[a-z][a-z0-9-]{0,30}$", RegexOptions.CultureInvariant)]
    private static partial Regex Name();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex EnvName();
}
