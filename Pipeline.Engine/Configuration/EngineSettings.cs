using Pipeline.Checkup.Scanning;

namespace Pipeline.Engine.Configuration;

/// <summary>
/// Operator-wide settings of one engine installation (<c>engine.yaml</c>): where definitions live,
/// where the engine works, and how it reaches the database, clamd, the registry and the internal git.
/// Secrets are never written here: only paths of files that hold them.
/// </summary>
public sealed record EngineSettings(
    string SourceFile,
    string PipelinesDir,
    string WorkDir,
    DatabaseSettings Database,
    ClamdSettings Clamd,
    RegistrySettings Registry,
    InternalGitSettings InternalGit)
{
    /// <summary>How attestations and checkpoints are signed; null: dev mode (a key generated once into the work folder).</summary>
    public AttestationSettings? Attestation { get; init; }

    /// <summary>Transparency-log settings.</summary>
    public LedgerSettings Ledger { get; init; } = new(null, LedgerSettings.DefaultOrigin);

    /// <summary>Auditor API settings (<c>audit:</c>).</summary>
    public AuditSettings Audit { get; init; } = new(null);

    /// <summary>engine.yaml <c>stages:</c>: the engine-wide stage list after the intake push (null: the default Vorprüfung ► Abnahme ► Schulung ► Produktion).</summary>
    public Lifecycle.StagePlan? Stages { get; init; }

    /// <summary>engine.yaml <c>people: { file }</c>: who may request, approve and withdraw (validated at start).</summary>
    public Approvals.PeopleDirectory People { get; init; } = Approvals.PeopleDirectory.Empty;

    /// <summary>engine.yaml <c>tenants:</c>: the operator's tenants and their pipelines (empty: no tenancy).</summary>
    public Tenancy.TenantDirectory Tenants { get; init; } = Tenancy.TenantDirectory.Empty;

    /// <summary>engine.yaml <c>approvalFloors:</c>: the least a Freigabe demands per Schutzbedarf (applies only with tenants).</summary>
    public Tenancy.ApprovalFloors ApprovalFloors { get; init; } = Tenancy.ApprovalFloors.Defaults;

    /// <summary>The people file's path, when one is configured.</summary>
    public string? PeopleFile { get; init; }

    /// <summary>engine.yaml <c>notifications:</c>: webhooks told about pending Freigaben, failed stages, promotions, refusals and withdrawals.</summary>
    public Notifications.NotificationSettings Notifications { get; init; } = Pipeline.Engine.Notifications.NotificationSettings.None;

    /// <summary>engine.yaml <c>cluster:</c>: the Quartz cluster the daemons on this database form.</summary>
    public Cluster.ClusterSettings Cluster { get; init; } = Pipeline.Engine.Cluster.ClusterSettings.Default;

    /// <summary>What these settings were read for; with <see cref="ConfigScope.Audit"/> <see cref="Clamd"/>, <see cref="Registry"/> and <see cref="InternalGit"/> were not read (placeholders).</summary>
    public ConfigScope Scope { get; init; } = ConfigScope.Engine;

    /// <summary>engine.yaml <c>metrics: { listen }</c>: health and Prometheus metrics of the daemon (null: not served).</summary>
    public MetricsSettings? Metrics { get; init; }

    /// <summary>engine.yaml <c>logging: { format }</c>.</summary>
    public LoggingSettings Logging { get; init; } = LoggingSettings.Default;
}

/// <summary>What a command needs of engine.yaml: everything (the engine), or only the database, ledger, keys and audit settings (auditors).</summary>
public enum ConfigScope
{
    Engine,

    /// <summary>Audit commands: clamd, the registry and the internal git are neither required nor checked, and the pipelines folder need not exist.</summary>
    Audit,
}

/// <summary><c>audit: { apiTokensFile }</c>: the file listing the SHA-256 hashes of the auditors' API tokens (no file: the API refuses to start).</summary>
public sealed record AuditSettings(string? ApiTokensFile);

/// <summary>
/// The main connection is the engine's role (INSERT/SELECT on ledger tables); the optional
/// migration connection is the schema owner's. Without it the engine migrates with its own
/// connection (dev mode).
/// </summary>
public sealed record DatabaseSettings(string ConnectionString, string? PasswordFile)
{
    public string? MigrationConnectionString { get; init; }
    public string? MigrationPasswordFile { get; init; }
}

/// <summary><c>attestation: { signingKeyFile, verificationKeys: [...] }</c>: the engine key (ECDSA P-256 PEM) and retired keys still trusted for verification.</summary>
public sealed record AttestationSettings(string SigningKeyFile, IReadOnlyList<string> VerificationKeyFiles);

/// <summary><c>ledger: { checkpointDir, origin }</c>: where checkpoint notes are written for auditors, and the log's name in them.</summary>
public sealed record LedgerSettings(string? CheckpointDir, string Origin)
{
    public const string DefaultOrigin = "pipeline.example/ledger";
}

/// <summary>
/// <c>clamd: { endpoints, parallelism, timeoutSeconds, configFile | limits }</c>. <see cref="Limits"/> are what clamd
/// really scans (MaxFileSize, MaxScanSize, MaxRecursion, MaxFiles, StreamMaxLength): read from clamd's own
/// configuration file (<c>configFile</c>) or stated explicitly (<c>limits</c>), never assumed.
/// </summary>
public sealed record ClamdSettings(IReadOnlyList<string> Endpoints, int Parallelism, TimeSpan Timeout, ClamdLimits Limits);

/// <summary>
/// The internal registry: URL, credentials file (<c>user:password</c>), the CA bundle (PEM) that signs
/// its TLS certificate, and how often a request is attempted on transient failures.
/// </summary>
public sealed record RegistrySettings(Uri Url, string? CredentialsFile)
{
    public string? CaBundleFile { get; init; }
    public int MaxAttempts { get; init; } = 4;
}

public sealed record InternalGitSettings(Uri Url, string? CredentialsFile);

public static class EngineSettingsLoader
{
    /// <summary>Reads and validates <paramref name="path"/>; relative paths in it are relative to its folder.</summary>
    /// <exception cref="ConfigurationException">with every problem found, file and line.</exception>
    public static EngineSettings Load(string path) => Load(path, ConfigScope.Engine);

    /// <summary>As <see cref="Load(string)"/>, checking only what <paramref name="scope"/> needs.</summary>
    public static EngineSettings Load(string path, ConfigScope scope)
    {
        var errors = new ConfigErrors();
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            errors.Add(path, 0, 0, "engine configuration file not found", "pass --config FILE or set PIPELINE_CONFIG");
            errors.ThrowIfAny();
        }

        var settings = Parse(full, File.ReadAllText(full), errors, scope);
        errors.ThrowIfAny();
        return settings!;
    }

    public static EngineSettings? Parse(string file, string text, ConfigErrors errors, ConfigScope scope = ConfigScope.Engine)
    {
        var root = YamlReader.Load(file, text, errors, expandEnvironment: true);
        if (root is null) return null;
        var baseDir = System.IO.Path.GetDirectoryName(file) ?? ".";

        var pipelines = ResolveDir(root, "pipelines", baseDir, mustExist: scope == ConfigScope.Engine);
        var work = ResolveDir(root, "workDir", baseDir, mustExist: false);

        var db = root.Mapping("database", required: true);
        string? conn = null, pwFile = null, migConn = null, migPwFile = null;
        if (db is not null)
        {
            conn = db.String("connectionString", required: true);
            if (conn is not null && conn.Contains("password", StringComparison.OrdinalIgnoreCase))
                db.KeyError("connectionString", "the connection string must not contain a password", "put the password in a file and name it in 'database.passwordFile'");
            pwFile = ResolveFile(db, "passwordFile", baseDir);
            migConn = db.String("migrationConnectionString");
            if (migConn is not null && migConn.Contains("password", StringComparison.OrdinalIgnoreCase))
                db.KeyError("migrationConnectionString", "the connection string must not contain a password", "put the password in a file and name it in 'database.migrationPasswordFile'");
            migPwFile = ResolveFile(db, "migrationPasswordFile", baseDir);
            db.Done();
        }

        AttestationSettings? attestation = null;
        if (root.Has("attestation") && root.Mapping("attestation", required: true) is { } att)
        {
            var keyFile = ResolveFile(att, "signingKeyFile", baseDir, required: true);
            var verification = new List<string>();
            foreach (var v in att.StringList("verificationKeys"))
            {
                var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, v));
                if (!File.Exists(full)) att.KeyError("verificationKeys", $"verification key file '{full}' does not exist");
                verification.Add(full);
            }

            att.Done();
            if (keyFile is not null) attestation = new AttestationSettings(keyFile, verification);
        }

        string? checkpointDir = null;
        var origin = LedgerSettings.DefaultOrigin;
        if (root.Has("ledger") && root.Mapping("ledger", required: true) is { } led)
        {
            if (led.String("checkpointDir") is { } cd) checkpointDir = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, cd));
            if (led.String("origin") is { } o)
            {
                if (o.Length == 0 || o.Any(char.IsWhiteSpace)) led.KeyError("origin", "the log origin must be one word without spaces, e.g. example.org/pipeline-ledger");
                else origin = o;
            }

            led.Done();
        }

        string? apiTokensFile = null;
        if (root.Has("audit") && root.Mapping("audit", required: true) is { } aud)
        {
            apiTokensFile = ResolveFile(aud, "apiTokensFile", baseDir);
            aud.Done();
        }

        var stages = Lifecycle.StageConfigParser.Parse(root, "stages", baseDir, checkFiles: true);
        var tenants = Tenancy.TenantDirectory.Parse(root);
        var approvalFloors = Tenancy.ApprovalFloors.Parse(root, tenants.Configured);
        string? peopleFile = null;
        Approvals.PeopleDirectory? people = null;
        if (root.Has("people") && root.Mapping("people", required: true) is { } ppl)
        {
            peopleFile = ResolveFile(ppl, "file", baseDir, required: true);
            ppl.Done();
            if (peopleFile is not null && File.Exists(peopleFile)) people = Approvals.PeopleDirectory.Load(peopleFile, errors, tenants);
        }

        var notifications = Notifications.NotificationSettings.Parse(root, baseDir);
        var cluster = Cluster.ClusterSettings.Parse(root);

        var (clamdSettings, registrySettings, gitSettings) = scope == ConfigScope.Audit ? NotReadInAuditScope(root) : ReadStageServices(root, baseDir, errors);
        var (metrics, logging) = OperationsSettingsParser.Parse(root);
        root.Done();
        if (errors.Any) return null;
        return new EngineSettings(file, pipelines!, work!, new DatabaseSettings(conn!, pwFile) { MigrationConnectionString = migConn, MigrationPasswordFile = migPwFile },
            clamdSettings!, registrySettings!, gitSettings!)
        {
            Attestation = attestation,
            Ledger = new LedgerSettings(checkpointDir ?? System.IO.Path.Combine(work!, "checkpoints"), origin),
            Audit = new AuditSettings(apiTokensFile),
            Stages = stages,
            People = people ?? Approvals.PeopleDirectory.Empty,
            PeopleFile = peopleFile,
            Tenants = tenants,
            ApprovalFloors = approvalFloors,
            Notifications = notifications,
            Cluster = cluster,
            Metrics = metrics,
            Logging = logging,
            Scope = scope,
        };
    }

    /// <summary>
    /// The audit scope: clamd, the registry and the internal git are what the engine's stages need, not
    /// an auditor; their sections are skipped unread (so neither a missing section nor its missing files
    /// stop an audit) and the settings hold inert placeholders.
    /// </summary>
    private static (ClamdSettings?, RegistrySettings?, InternalGitSettings?) NotReadInAuditScope(MappingReader root)
    {
        _ = root.Mapping("clamd");
        _ = root.Mapping("registry");
        _ = root.Mapping("internalGit");
        var notRead = new Uri("http://not-read-in-audit-scope.invalid/");
        return (new ClamdSettings([], 1, TimeSpan.FromMinutes(5), ClamdLimits.Defaults), new RegistrySettings(notRead, null), new InternalGitSettings(notRead, null));
    }

    /// <summary>engine.yaml <c>clamd:</c>, <c>registry:</c> and <c>internalGit:</c>: the services the engine's stages use (null parts when they have errors).</summary>
    private static (ClamdSettings?, RegistrySettings?, InternalGitSettings?) ReadStageServices(MappingReader root, string baseDir, ConfigErrors errors)
    {
        var clamd = root.Mapping("clamd", required: true);
        IReadOnlyList<string> endpoints = [];
        int parallelism = 2;
        TimeSpan timeout = TimeSpan.FromMinutes(5);
        ClamdLimits? limits = null;
        if (clamd is not null)
        {
            endpoints = clamd.StringList("endpoints", required: true);
            foreach (var e in endpoints)
            {
                if (!e.StartsWith("tcp://", StringComparison.Ordinal) && !e.StartsWith("unix://", StringComparison.Ordinal))
                    clamd.KeyError("endpoints", $"clamd endpoint '{e}' must start with tcp:// or unix://");
            }

            parallelism = clamd.Int("parallelism", 1, 64) ?? 2;
            timeout = TimeSpan.FromSeconds(clamd.Int("timeoutSeconds", 1, 86400) ?? 300);
            limits = ReadClamdLimits(clamd, baseDir, errors);
            clamd.Done();
        }

        var registry = root.Mapping("registry", required: true);
        Uri? regUrl = null;
        string? regCreds = null, regCa = null;
        var regAttempts = 4;
        if (registry is not null)
        {
            regUrl = HttpUrl(registry, "url");
            regCreds = ResolveFile(registry, "credentialsFile", baseDir);
            regCa = ResolveFile(registry, "caBundleFile", baseDir);
            if (regCa is not null && regUrl is not null && regUrl.Scheme != Uri.UriSchemeHttps)
                registry.KeyError("caBundleFile", "'caBundleFile' needs an https:// registry url");
            regAttempts = registry.Int("retries", 0, 10) is { } r ? r + 1 : 4;
            registry.Done();
        }

        var git = root.Mapping("internalGit", required: true);
        Uri? gitUrl = null;
        string? gitCreds = null;
        if (git is not null)
        {
            gitUrl = HttpUrl(git, "url");
            gitCreds = ResolveFile(git, "credentialsFile", baseDir);
            git.Done();
        }

        return (limits is null ? null : new ClamdSettings(endpoints, parallelism, timeout, limits),
            regUrl is null ? null : new RegistrySettings(regUrl, regCreds) { CaBundleFile = regCa, MaxAttempts = regAttempts },
            gitUrl is null ? null : new InternalGitSettings(gitUrl, gitCreds));
    }

    internal static Uri? HttpUrl(MappingReader m, string key, bool required = true)
    {
        var s = m.String(key, required);
        if (s is null) return null;
        if (Uri.TryCreate(s, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps) && string.IsNullOrEmpty(u.UserInfo))
            return u;
        m.KeyError(key, $"'{key}' must be an http:// or https:// URL without user or password", "credentials go into a file named by 'credentialsFile'");
        return null;
    }

    /// <summary>clamd's limits: parsed from <c>configFile</c> (errors with the clamd file's own lines) or from <c>limits</c>.</summary>
    private static ClamdLimits? ReadClamdLimits(MappingReader clamd, string baseDir, ConfigErrors errors)
    {
        var hasFile = clamd.Has("configFile");
        var hasLimits = clamd.Has("limits");
        if (hasFile == hasLimits)
        {
            clamd.Error(hasFile ? "clamd: name either 'configFile' or 'limits', not both" : "clamd: the engine must know what clamd really scans",
                "set 'configFile' to the clamd.conf that clamd runs with (its MaxFileSize, MaxScanSize, MaxRecursion, MaxFiles and StreamMaxLength are read from it), "
                + "or state them under 'limits'; archive members past them are skipped by clamd silently");
            _ = hasFile ? clamd.String("configFile") : null;
            _ = clamd.Mapping("limits");
            return null;
        }

        if (hasFile)
        {
            var file = ResolveFile(clamd, "configFile", baseDir, required: true);
            if (file is null || !File.Exists(file)) return null;
            var problems = new List<ClamdLimits.Problem>();
            var parsed = ClamdLimits.Load(file, problems);
            foreach (var p in problems)
                errors.Add(file, p.Line, 1, "clamd configuration: " + p.Message, "the engine judges archives by clamd's limits, so it must be able to read them");
            return parsed;
        }

        var l = clamd.Mapping("limits", required: true);
        if (l is null) return null;
        var d = ClamdLimits.Defaults;
        var explicitLimits = new ClamdLimits(
            l.Size("maxFileSize", required: true) ?? d.MaxFileSize,
            l.Size("maxScanSize", required: true) ?? d.MaxScanSize,
            l.Int("maxRecursion", 1, 64, required: true) ?? d.MaxRecursion,
            l.Int("maxFiles", 1, 1_000_000, required: true) ?? d.MaxFiles,
            l.Size("streamMaxLength", required: true) ?? d.StreamMaxLength,
            "engine configuration clamd.limits");
        foreach (var problem in explicitLimits.Validate()) l.Error("clamd.limits: " + problem);
        l.Done();
        return explicitLimits;
    }

    internal static string? ResolveFile(MappingReader m, string key, string baseDir, bool required = false)
    {
        var s = m.String(key, required);
        if (s is null) return null;
        var (full, problem) = Credentials.Resolve(s, baseDir);
        if (full is null) m.KeyError(key, problem!);
        else if (!File.Exists(full)) m.KeyError(key, $"file '{full}' named by '{key}' does not exist");
        return full;
    }

    private static string? ResolveDir(MappingReader m, string key, string baseDir, bool mustExist)
    {
        var s = m.String(key, required: true);
        if (s is null) return null;
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, s));
        if (mustExist && !Directory.Exists(full)) m.KeyError(key, $"folder '{full}' named by '{key}' does not exist");
        return full;
    }
}
