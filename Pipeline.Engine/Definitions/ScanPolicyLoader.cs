using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Checkup.Policies;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Definitions;

/// <summary>
/// Reads scan policies (<c>pipelines/policies/NAME.yaml</c>) with every error's file, line and a
/// hint, using the same YAML reader as pipeline definitions. The model and its evaluation live in
/// <see cref="Pipeline.Checkup.Policies"/>; this only parses and validates.
/// </summary>
public static class ScanPolicyLoader
{
    /// <summary>Folder of policies below the pipelines folder.</summary>
    public const string FolderName = "policies";

    private static readonly Regex ProfileName = new("^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", RegexOptions.CultureInvariant);
    private static readonly Regex Sha256Hex = new("^[a-f0-9]{64}$", RegexOptions.CultureInvariant);
    private static readonly Regex Detection = new(@"^[A-Za-z0-9][A-Za-z0-9._:/-]{2,200}$", RegexOptions.CultureInvariant);
    private static readonly Regex Age = new(@"^(\d{1,4})d$", RegexOptions.CultureInvariant);

    /// <summary>The file of policy <paramref name="name"/> in <paramref name="pipelinesDir"/>.</summary>
    public static string PathOf(string pipelinesDir, string name) => Path.Combine(pipelinesDir, FolderName, name + ".yaml");

    /// <summary>Loads one policy file; throws <see cref="ConfigurationException"/> with every problem.</summary>
    public static ScanPolicy Load(string file)
    {
        var errors = new ConfigErrors();
        if (!File.Exists(file))
        {
            errors.Add(file, 0, 0, "scan policy file not found", $"policies live in <pipelines>/{FolderName}/NAME.yaml");
            errors.ThrowIfAny();
        }

        var policy = Parse(file, File.ReadAllBytes(file), errors);
        errors.ThrowIfAny();
        return policy!;
    }

    /// <summary>Parses policy text; adds problems to <paramref name="errors"/> and returns null when there are any.</summary>
    public static ScanPolicy? Parse(string file, byte[] content, ConfigErrors errors)
    {
        var root = YamlReader.Load(file, Encoding.UTF8.GetString(content), errors);
        if (root is null) return null;
        var before = errors.All.Count;

        var name = root.String("name", PipelineDefinition.NamePattern, "policy name (lowercase letters, digits and '-')", required: true);
        var expected = Path.GetFileNameWithoutExtension(file);
        if (name is not null && name != expected)
            root.KeyError("name", $"policy name '{name}' must equal the file name '{expected}'", $"rename the file to {name}.yaml");
        var description = root.String("description");

        // Defaults shared by every profile; each profile may override any of them.
        var defaults = new ScanProfile("defaults");
        if (root.Mapping("defaults") is { } d) defaults = ReadProfile(d, defaults, "defaults");

        var profiles = new Dictionary<string, ScanProfile>(StringComparer.Ordinal);
        foreach (var pm in root.MappingList("profiles", required: true))
        {
            var key = pm.String("name", ProfileName, "profile name (lowercase letters, digits and '-', e.g. normal, hoch, sehr-hoch)", required: true);
            if (key is null) continue;
            if (profiles.ContainsKey(key))
            {
                pm.KeyError("name", $"profile '{key}' is defined twice");
                continue;
            }

            profiles[key] = ReadProfile(pm, defaults with { Name = key }, key);
        }

        var exceptions = new List<FindingException>();
        foreach (var e in root.MappingList("exceptions"))
        {
            var sha = e.String("sha256", Sha256Hex, "SHA-256 of the file (64 lowercase hex digits)", required: true);
            var detection = e.String("detection", Detection, "detection name as clamd reports it, e.g. Win.Trojan.Agent-123", required: true);
            var why = e.String("justification", required: true, hint: "why this finding is acceptable, for the auditors");
            var who = e.String("approvedBy", required: true, hint: "name of the person who approved the exception");
            var until = e.Date("expires", required: true);
            if (why is not null && why.Trim().Length < 10)
                e.KeyError("justification", "the justification is too short to mean anything (at least 10 characters)");
            e.Done();
            if (sha is not null && detection is not null && why is not null && who is not null && until is not null)
                exceptions.Add(new FindingException(sha, detection, why, who, until.Value));
        }

        root.Done();
        if (errors.All.Count > before) return null;
        return new ScanPolicy(name!, ScanPolicy.VersionOf(content), description, profiles, exceptions);
    }

    /// <summary>Validates every <c>*.yaml</c> in <paramref name="dir"/>; returns the valid policies, errors go to <paramref name="errors"/>.</summary>
    public static IReadOnlyList<ScanPolicy> CheckFolder(string dir, ConfigErrors errors)
    {
        var list = new List<ScanPolicy>();
        if (!Directory.Exists(dir)) return list;
        foreach (var file in Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            if (Parse(file, File.ReadAllBytes(file), errors) is { } p) list.Add(p);
        }

        return list;
    }

    private static ScanProfile ReadProfile(MappingReader m, ScanProfile p, string profileName)
    {
        if (m.Mapping("limits") is { } l)
        {
            p = p with
            {
                MaxFileSize = l.Size("maxFileSize") ?? p.MaxFileSize,
                MaxTotalSize = l.Size("maxTotalSize") ?? p.MaxTotalSize,
                MaxFiles = l.Int("maxFiles", 1, 10_000_000) ?? p.MaxFiles,
                MaxNestingDepth = l.Int("maxNestingDepth", 0, 64) ?? p.MaxNestingDepth,
                MaxUnpackedSize = l.Size("maxUnpackedSize") ?? p.MaxUnpackedSize,
                MaxCompressionRatio = l.Int("maxCompressionRatio", 2, 100_000) ?? p.MaxCompressionRatio,
                OnLimitExceeded = l.Enum<PolicyAction>("onExceed") ?? p.OnLimitExceeded,
            };
            l.Done();
        }

        if (m.Mapping("scanner") is { } s)
        {
            var minText = s.String("minEngineVersion");
            Version? min = p.MinEngineVersion;
            if (minText is not null)
            {
                if (Version.TryParse(minText, out var v)) min = v;
                else s.KeyError("minEngineVersion", $"'minEngineVersion' must be a version like 1.0.0, not '{minText}'");
            }

            TimeSpan? age = p.MaxDatabaseAge;
            var ageText = s.String("maxDatabaseAge");
            if (ageText is not null)
            {
                var am = Age.Match(ageText);
                if (am.Success) age = TimeSpan.FromDays(int.Parse(am.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
                else s.KeyError("maxDatabaseAge", $"'maxDatabaseAge' must be a number of days like 7d, not '{ageText}'");
            }

            p = p with
            {
                ScannerStreamMaxLength = s.Size("streamMaxLength") ?? p.ScannerStreamMaxLength,
                UnscannableLargeFiles = s.Enum<PolicyAction>("largerThanStreamMaxLength") ?? p.UnscannableLargeFiles,
                AllowFilesOver2GiB = s.Bool("allowFilesOver2GiB") ?? p.AllowFilesOver2GiB,
                MinEngineVersion = min,
                MaxDatabaseAge = age,
            };
            if (p.AllowFilesOver2GiB && p.UnscannableLargeFiles != PolicyAction.Allow)
                s.KeyError("allowFilesOver2GiB", "'allowFilesOver2GiB: true' has no effect unless 'largerThanStreamMaxLength: allow'",
                    "files over 2 GiB are never scanned; allowing them means allowing unscanned files explicitly");
            s.Done();
        }

        p = p with
        {
            EncryptedContent = m.Enum<PolicyAction>("encrypted") ?? p.EncryptedContent,
            UnparsableContent = m.Enum<PolicyAction>("unparsable") ?? p.UnparsableContent,
            UninspectableArchives = m.Enum<PolicyAction>("uninspectable") ?? p.UninspectableArchives,
            ExceptionsAllowed = m.Bool("exceptionsAllowed") ?? p.ExceptionsAllowed,
        };

        if (m.Has("fileTypes"))
        {
            var rules = new List<FileTypeRule>(p.FileTypeRules);
            foreach (var r in m.MappingList("fileTypes"))
            {
                var ruleName = r.String("name", required: true, hint: "a short name shown when the rule rejects a file");
                var globs = new List<PathGlob>();
                foreach (var g in r.StringList("paths", required: true))
                {
                    if (PathGlob.TryParse(g) is { } glob) globs.Add(glob);
                    else r.KeyError("paths", $"'{g}' is not a valid path glob", "relative, '/'-separated, no '..': e.g. docs/**, bin/*, **/*.sh");
                }

                var deny = new List<FileType>();
                foreach (var t in r.StringList("deny", required: true))
                {
                    if (FileTypes.Resolve(t) is { } types) deny.AddRange(types);
                    else r.KeyError("deny", $"unknown file type '{t}'", "known: " + string.Join(", ", FileTypes.KnownNames));
                }

                var action = r.Enum<PolicyAction>("action") ?? PolicyAction.Reject;
                r.Done();
                if (ruleName is not null) rules.Add(new FileTypeRule(ruleName, globs, deny.Distinct().ToList(), action));
            }

            p = p with { FileTypeRules = rules };
        }

        if (p.MaxFileSize > p.ScannerStreamMaxLength && p.UnscannableLargeFiles != PolicyAction.Allow)
            m.Error($"profile '{profileName}': maxFileSize ({p.MaxFileSize}) is larger than scanner.streamMaxLength ({p.ScannerStreamMaxLength}); files between the two are rejected as unscannable anyway",
                "lower limits.maxFileSize, or raise clamd's StreamMaxLength and scanner.streamMaxLength together");
        if (p.MaxUnpackedSize < 1)
            m.Error($"profile '{profileName}': limits.maxUnpackedSize must be at least 1 byte", "e.g. 1GiB");
        m.Done();
        return p;
    }
}
