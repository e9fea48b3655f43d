using System.Text.RegularExpressions;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// Reads a <c>stages:</c> list (engine.yaml or a pipeline definition) with every error collected
/// with file and line:
/// <code>
/// stages:
///   - name: Vorprüfung
///     approval: { automatic: true }
///   - name: Abnahme
///     registry: { url: https://abnahme-registry.example, credentialsFile: abnahme.cred, caFile: abnahme-ca.pem }
///     repositoryPrefix: abnahme
///     approval: { role: verfahrensverantwortlich, approvers: 1, validFor: 72h }
///   - name: Produktion
///     tag: prod
///     approval: { approvers: 2, requireSignature: true }
///     environment: { kind: gitops, repository: https://git.example/env/prod.git, path: apps/fv, namespace: fv, signingKey: deploy-key }
/// </code>
/// <c>environment</c> (optional; none = promotion only) is read by <see cref="Deploy.StageEnvironmentParser"/>.
/// </summary>
public static class StageConfigParser
{
    private static readonly Regex RepoPath = new(@"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", RegexOptions.CultureInvariant);
    private static readonly Regex TagPattern = new("^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$", RegexOptions.CultureInvariant);

    /// <summary>The plan under <paramref name="key"/>, or null when the key is absent or has errors (added to the reader's errors).</summary>
    public static StagePlan? Parse(MappingReader parent, string key, string baseDir, bool checkFiles)
    {
        if (!parent.Has(key)) return null;
        var before = parent.Errors.All.Count;
        var items = parent.MappingList(key, required: true);
        var stages = new List<StageDefinition>();
        for (var i = 0; i < items.Count; i++)
        {
            if (ParseStage(items[i], i, baseDir, checkFiles) is not { } stage) continue;
            if (stages.Any(s => string.Equals(s.Name, stage.Name, StringComparison.OrdinalIgnoreCase)))
                items[i].KeyError("name", $"stage '{stage.Name}' is listed twice");
            else if (stages.Any(s => s.Tag == stage.Tag))
                items[i].KeyError("tag", $"stage tag '{stage.Tag}' is already used by another stage", "give each stage its own 'tag'");
            else if (stages.FirstOrDefault(s => s.RepositoryPrefix == stage.RepositoryPrefix && s.Registry?.Url == stage.Registry?.Url) is { } same)
                items[i].KeyError("repositoryPrefix", $"stage '{stage.Name}' would share its registry and repository prefix '{stage.RepositoryPrefix}' with '{same.Name}'", "give it its own 'repositoryPrefix' or registry");
            else stages.Add(stage);
        }

        return parent.Errors.All.Count > before || stages.Count == 0 ? null : new StagePlan(stages);
    }

    private static StageDefinition? ParseStage(MappingReader m, int index, string baseDir, bool checkFiles)
    {
        var before = m.Errors.All.Count;
        var name = m.String("name", required: true, hint: "e.g. Vorprüfung, Abnahme, Schulung, Produktion");
        if (name is not null && (name.Trim().Length == 0 || name.Length > 64 || name.Any(char.IsControl)))
            m.KeyError("name", $"'{m.Path}.name' must be 1 to 64 printable characters");
        var slug = name is null ? "stage" : StageDefaults.Slug(name);
        var tag = m.String("tag", TagPattern, "registry tag ([A-Za-z0-9_][A-Za-z0-9._-]*)") ?? slug;
        var prefix = m.String("repositoryPrefix", RepoPath, "repository path (lowercase, '/'-separated)") ?? slug;

        StageRegistry? registry = null;
        if (m.Mapping("registry") is { } r)
        {
            var url = EngineSettingsLoader.HttpUrl(r, "url");
            var creds = File(r, "credentialsFile", baseDir, checkFiles);
            var ca = File(r, "caFile", baseDir, checkFiles);
            if (ca is not null && url is not null && url.Scheme != Uri.UriSchemeHttps)
                r.KeyError("caFile", "'caFile' needs an https:// registry url");
            r.Done();
            if (url is not null) registry = new StageRegistry(url, creds, ca);
        }

        var rule = ApprovalRule.DefaultFor(name ?? "");
        if (m.Mapping("approval") is { } a)
        {
            var roleText = a.String("role");
            var role = rule.Role;
            if (roleText is not null && !(Enum.TryParse(roleText, ignoreCase: true, out role) && roleText.All(char.IsLetter)))
                a.KeyError("role", $"'{a.Path}.role' must be one of systempfleger, verfahrensverantwortlich, sicherheitsteam, auditor, betrieb, not '{roleText}'");
            var approvers = a.Int("approvers", 1, 10) ?? rule.Approvers;
            var fourEyes = a.Bool("fourEyes") ?? rule.FourEyes;
            var signature = a.Bool("requireSignature") ?? rule.RequireSignature;
            var onBehalf = a.Bool("onBehalf") ?? rule.OnBehalf;
            var automatic = a.Bool("automatic") ?? false;
            TimeSpan? validFor = null;
            if (a.String("validFor") is { } v)
            {
                if (Durations.TryParse(v, out var span)) validFor = span;
                else a.KeyError("validFor", $"'{a.Path}.validFor' must be a duration such as 90m, 72h or 14d, not '{v}'");
            }

            if (automatic && index > 0)
                a.KeyError("automatic", $"only the first stage may be automatic; '{name}' is stage {index + 1}", "every later stage needs a Freigabe by a named person");
            if (automatic && (a.Has("approvers") || a.Has("requireSignature") || a.Has("role")))
                a.Error($"'{a.Path}' is automatic: 'role', 'approvers' and 'requireSignature' do not apply");
            a.Done();
            rule = new ApprovalRule(role, approvers, fourEyes, signature, validFor, onBehalf, automatic);
        }

        var environment = m.Mapping("environment") is { } env ? Deploy.StageEnvironmentParser.Parse(env, baseDir, checkFiles) : null;
        m.Done();
        return m.Errors.All.Count > before || name is null ? null : new StageDefinition(name.Trim(), tag, registry, prefix, rule, environment);
    }

    private static string? File(MappingReader m, string key, string baseDir, bool check)
    {
        var s = m.String(key);
        if (s is null) return null;
        var full = Path.GetFullPath(Path.Combine(baseDir, s));
        if (check && !System.IO.File.Exists(full)) m.KeyError(key, $"file '{full}' named by '{key}' does not exist");
        return full;
    }
}
