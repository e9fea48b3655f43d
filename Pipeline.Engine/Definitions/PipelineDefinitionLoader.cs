using System.Text.RegularExpressions;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Engine.Definitions;

/// <summary>
/// Loads every pipeline definition of a folder, collecting all errors (file, line, hint) before
/// anything runs. <see cref="Load"/> checks the schema; with <c>checkEnvironment</c> it also checks
/// that every named file exists (the daemon and <c>pipeline check</c> do both).
/// </summary>
public static class PipelineDefinitionLoader
{
    private static readonly Regex RepoPath = new(@"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$", RegexOptions.CultureInvariant);
    private static readonly Regex BaseImageRef = new(@"^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*@sha256:[a-f0-9]{64}$", RegexOptions.CultureInvariant);
    private static readonly Regex Manifest = new("^(SHA256SUMS|SHA512SUMS)$", RegexOptions.CultureInvariant);

    public static IReadOnlyList<PipelineDefinition> LoadFolder(string dir, bool checkEnvironment)
    {
        var errors = new ConfigErrors();
        var list = new List<PipelineDefinition>();
        if (!Directory.Exists(dir))
        {
            errors.Add(dir, 0, 0, "pipelines folder does not exist");
            errors.ThrowIfAny();
        }

        foreach (var file in Directory.EnumerateFiles(dir).Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var def = Parse(file, File.ReadAllText(file), errors, checkEnvironment);
            if (def is null) continue;
            if (list.FirstOrDefault(d => d.Name == def.Name) is { } other)
                errors.Add(file, 1, 1, $"pipeline name '{def.Name}' is already used by {other.SourceFile}");
            else list.Add(def);
        }

        errors.ThrowIfAny();
        return list;
    }

    public static PipelineDefinition Load(string file, bool checkEnvironment)
    {
        var errors = new ConfigErrors();
        var def = Parse(file, File.ReadAllText(file), errors, checkEnvironment);
        errors.ThrowIfAny();
        return def!;
    }

    public static PipelineDefinition? Parse(string file, string text, ConfigErrors errors, bool checkEnvironment)
    {
        var root = YamlReader.Load(file, text, errors, expandEnvironment: true);
        if (root is null) return null;
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".";
        var before = errors.All.Count;

        var name = root.String("name", PipelineDefinition.NamePattern, "pipeline name (lowercase letters, digits and '-')", required: true);
        var expected = Path.GetFileNameWithoutExtension(file);
        if (name is not null && name != expected)
            root.KeyError("name", $"pipeline name '{name}' must equal the file name '{expected}'", $"rename the file to {name}.yaml");
        var supplier = root.String("supplier", required: true);
        var schedule = root.String("schedule");
        if (schedule is not null && !IsValidCron(schedule))
            root.KeyError("schedule", $"'schedule' is not a valid Quartz cron expression: '{schedule}'", "six or seven fields, e.g. \"0 0/15 * * * ?\" (every 15 minutes)");
        else if (schedule is not null && !EverFires(schedule))
            root.KeyError("schedule", $"'schedule' never fires: '{schedule}' names no time that exists (e.g. 31 February); the daemon could not schedule it",
                "check day of month and month together, e.g. \"0 0 0 L 2 ?\" for the last day of February");

        SourceSettings? source = null;
        if (root.Mapping("source", required: true) is { } s)
        {
            var url = ParseSourceUrl(s);
            var creds = NamedFile(s, "credentialsFile", baseDir, checkEnvironment);
            var patternText = s.String("tagPattern", required: true, hint: @"a regular expression, e.g. '^v\d+\.\d+\.\d+$'");
            Regex? pattern = null;
            if (patternText is not null)
            {
                try
                {
                    pattern = new Regex(patternText, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
                }
                catch (ArgumentException e)
                {
                    s.KeyError("tagPattern", "'source.tagPattern' is not a valid regular expression: " + e.Message);
                }
            }

            s.Done();
            if (url is not null && pattern is not null) source = new SourceSettings(url, creds, pattern);
        }

        var signers = new List<SignerDefinition>();
        foreach (var sg in root.MappingList("signers", required: true))
        {
            var signer = ParseSigner(sg, baseDir, checkEnvironment);
            if (signer is null) continue;
            if (signers.FirstOrDefault(o => o.Key.Fingerprint == signer.Key.Fingerprint) is { } dup)
                sg.Error($"'{sg.Path}' has the same key as signer '{dup.Name}'", "list each key once; rotate by adding the new key beside the old one");
            else signers.Add(signer);
        }

        var trust = TrustSettings.Default;
        if (root.Mapping("trust") is { } t)
        {
            trust = new TrustSettings(t.Bool("acceptSignedCommits") ?? false, t.Bool("allowDowngrade") ?? false);
            t.Done();
        }

        var checksums = new ChecksumSettings("SHA256SUMS", ManifestSignature.Tag, null);
        if (root.Mapping("checksums") is { } c)
        {
            var manifestName = c.String("manifest", Manifest, "checksum manifest name (SHA256SUMS or SHA512SUMS)") ?? "SHA256SUMS";
            var signature = c.Enum<ManifestSignature>("signature") ?? ManifestSignature.Tag;
            SigstoreRequirement? sigstore = null;
            var sm = c.Mapping("sigstore", required: signature == ManifestSignature.Sigstore);
            if (sm is not null)
            {
                if (signature != ManifestSignature.Sigstore)
                    c.KeyError("sigstore", "'checksums.sigstore' is only used with 'signature: sigstore'");
                var bundle = sm.String("bundle") ?? manifestName + ".sigstore.json";
                if (!DeliveryManifestParser.IsSafeRelative(bundle) || bundle.Contains('/'))
                    sm.KeyError("bundle", $"'checksums.sigstore.bundle' must be a file name at the top of the delivery, not '{bundle}'");
                var identity = sm.String("identity");
                var issuer = sm.String("issuer");
                var keyFile = NamedFile(sm, "publicKeyFile", baseDir, checkEnvironment);
                var rootFile = NamedFile(sm, "trustedRoot", baseDir, checkEnvironment);
                if (keyFile is null && (identity is null || issuer is null))
                    sm.Error("'checksums.sigstore' needs 'identity' and 'issuer' (the certificate's signer and OIDC issuer), or 'publicKeyFile'");
                if (keyFile is not null && (identity is not null || issuer is not null))
                    sm.Error("'checksums.sigstore' takes 'identity' and 'issuer', or 'publicKeyFile', not both");
                if (checkEnvironment) CheckTrustedRoot(sm, rootFile);
                sm.Done();
                sigstore = new SigstoreRequirement(bundle, identity, issuer, keyFile, rootFile);
            }

            c.Done();
            checksums = new ChecksumSettings(manifestName, signature, sigstore);
        }

        PublishSettings? publish = null;
        if (root.Mapping("publish", required: true) is { } p)
        {
            var repo = p.String("repository", RepoPath, "repository path (lowercase, '/'-separated)", required: true);
            p.Done();
            if (repo is not null) publish = new PublishSettings(repo);
        }

        ImageTargetSettings? images = null;
        if (root.Mapping("images", required: true) is { } im)
        {
            var prefix = im.String("repositoryPrefix", RepoPath, "registry repository path (lowercase, '/'-separated)", required: true);
            var bases = im.StringList("allowedBaseImages", required: true);
            foreach (var b in bases)
            {
                if (!BaseImageRef.IsMatch(b))
                    im.KeyError("allowedBaseImages", $"allowed base image '{b}' must be a repository pinned by digest", "e.g. base/busybox@sha256:<64 hex digits>");
            }

            var allowRoot = im.Bool("allowRoot") ?? false;
            im.Done();
            if (prefix is not null) images = new ImageTargetSettings(prefix, bases, allowRoot);
        }

        // The Schutzbedarf selects the scan profile of the same name unless 'scan.profile' names one (never a weaker one).
        var schutzbedarf = Tenancy.SchutzbedarfNames.Read(root, "schutzbedarf");
        ScanSelection? scan = null;
        if (root.Mapping("scan") is { } sc)
        {
            var policy = sc.String("policy", PipelineDefinition.NamePattern, "policy name (a file pipelines/policies/NAME.yaml)", required: true);
            var profile = sc.String("profile", required: schutzbedarf is null, hint: "a profile of that policy, e.g. normal, hoch or sehr-hoch") ?? schutzbedarf?.Name();
            if (policy is not null && checkEnvironment)
            {
                var policyFile = ScanPolicyLoader.PathOf(baseDir, policy);
                if (!System.IO.File.Exists(policyFile))
                    sc.KeyError("policy", $"scan policy file '{policyFile}' does not exist");
                else if (ScanPolicyLoader.Parse(policyFile, System.IO.File.ReadAllBytes(policyFile), errors) is { } pol && profile is not null && !pol.Profiles.ContainsKey(profile))
                    sc.KeyError("profile", $"scan policy '{policy}' has no profile '{profile}'", "its profiles: " + string.Join(", ", pol.Profiles.Keys));
            }
            sc.Done();
            if (policy is not null && profile is not null) scan = new ScanSelection(policy, profile);
        }

        if (schutzbedarf is { } level && scan is not null && Tenancy.SchutzbedarfNames.TryParse(scan.Profile, out var chosen) && chosen < level)
            root.KeyError("scan", $"scan profile '{scan.Profile}' is weaker than the pipeline's Schutzbedarf {level.Name()}", $"use profile '{level.Name()}' or a stricter one, or leave 'scan.profile' out");
        var stages = Lifecycle.StageConfigParser.Parse(root, "stages", baseDir, checkEnvironment);
        root.Done();
        if (errors.All.Count > before) return null;
        return new PipelineDefinition(name!, file, supplier!, schedule, source!, signers, checksums, publish!, images!) { Scan = scan, Trust = trust, Stages = stages, Schutzbedarf = schutzbedarf };
    }

    private static SignerDefinition? ParseSigner(MappingReader sg, string baseDir, bool checkEnvironment)
    {
        var before = sg.Errors.All.Count;
        var name = sg.String("name", required: true);
        var org = sg.String("organisation", required: true);
        var sshKey = sg.String("sshKey");
        var pgpInline = sg.String("openpgpKey");
        var pgpFile = NamedFile(sg, "openpgpKeyFile", baseDir, checkEnvironment);
        var fingerprint = sg.String("fingerprint");
        SignerKey? key = null;
        var given = (sshKey is null ? 0 : 1) + (pgpInline is null ? 0 : 1) + (pgpFile is null ? 0 : 1);
        if (given != 1)
        {
            sg.Error($"'{sg.Path}' needs exactly one key: 'sshKey', 'openpgpKey' or 'openpgpKeyFile'",
                "sshKey: one line 'ssh-ed25519 AAAA... comment'; openpgpKey: an armored public key block");
        }
        else if (sshKey is not null)
        {
            try
            {
                key = new SshSignerKey(Pipeline.Checkup.Signatures.Ssh.SshPublicKey.Parse(sshKey));
            }
            catch (Pipeline.Checkup.CheckupException e)
            {
                sg.KeyError("sshKey", $"'{sg.Path}.sshKey' is not a usable SSH public key: {e.Message}");
            }
        }
        else
        {
            var text = pgpInline ?? (File.Exists(pgpFile) ? File.ReadAllText(pgpFile!) : null);
            if (text is not null)
            {
                try
                {
                    key = new OpenPgpSignerKey(Pipeline.Checkup.Signatures.OpenPgp.OpenPgpPublicKeyRing.Parse(text));
                }
                catch (Pipeline.Checkup.CheckupException e)
                {
                    sg.KeyError(pgpInline is not null ? "openpgpKey" : "openpgpKeyFile", $"'{sg.Path}' has no usable OpenPGP public key: {e.Message}");
                }
            }
        }

        if (fingerprint is not null && key is not null)
        {
            var normalized = fingerprint.Replace(" ", "", StringComparison.Ordinal);
            if (!string.Equals(normalized, key.Fingerprint, StringComparison.OrdinalIgnoreCase))
                sg.KeyError("fingerprint", $"'{sg.Path}.fingerprint' {fingerprint} does not match the key's fingerprint {key.Fingerprint}");
        }

        var from = sg.Date("validFrom");
        var until = sg.Date("validUntil");
        if (from is not null && until is not null && until <= from)
            sg.KeyError("validUntil", "'validUntil' must be after 'validFrom'");

        var patterns = new List<Regex>();
        foreach (var p in sg.StringList("tags"))
        {
            try
            {
                patterns.Add(new Regex(p, RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100)));
            }
            catch (ArgumentException e)
            {
                sg.KeyError("tags", $"'{sg.Path}.tags' has an invalid regular expression '{p}': {e.Message}");
            }
        }

        DateTimeOffset? revokedAt = null;
        string? reason = null;
        if (sg.Mapping("revoked") is { } rv)
        {
            revokedAt = rv.Date("at", required: true);
            reason = rv.String("reason", required: true, hint: "why the key was revoked, e.g. 'key compromised'");
            rv.Done();
        }

        sg.Done();
        if (sg.Errors.All.Count > before || key is null) return null;
        return new SignerDefinition(name!, org!, key, from, until) { TagPatterns = patterns, RevokedAt = revokedAt, RevocationReason = reason };
    }

    /// <summary>The daemon refuses a trigger that has no next fire time, so validation computes it.</summary>
    private static bool EverFires(string expression) =>
        new Quartz.CronExpression(expression).GetNextValidTimeAfter(DateTimeOffset.UtcNow) is not null;

    private static bool IsValidCron(string expression)
    {
        try
        {
            _ = new Quartz.CronExpression(expression);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static Uri? ParseSourceUrl(MappingReader s)
    {
        var text = s.String("url", required: true);
        if (text is null) return null;
        if (Uri.TryCreate(text, UriKind.Absolute, out var u) && u.Scheme is "http" or "https" or "file" && string.IsNullOrEmpty(u.UserInfo))
            return u;
        s.KeyError("url", $"'source.url' must be an http(s):// or file:// URL without user or password: '{Vcs.SupplierMirror.Redact(text)}'", "credentials go into a file named by 'source.credentialsFile'");
        return null;
    }

    /// <summary>
    /// The trusted root a Sigstore pipeline verifies with (its own <c>trustedRoot</c>, else the installed
    /// default) must be complete now, not when the first delivery arrives: every problem
    /// (<see cref="Trust.SigstoreTrustRoots.RootErrorCode"/>, each missing field) is reported at the
    /// pipeline file's <c>trustedRoot</c> line (or its <c>sigstore</c> line for the default root).
    /// </summary>
    private static void CheckTrustedRoot(MappingReader sigstore, string? rootFile)
    {
        var path = rootFile ?? Trust.SigstoreTrustRoots.DefaultTrustedRoot();
        if (path is null)
        {
            sigstore.Error($"{Trust.SigstoreTrustRoots.RootErrorCode}: no Sigstore trusted root is configured or installed",
                "name one in 'checksums.sigstore.trustedRoot', or install the default with scripts/install-sigstore-root.sh");
            return;
        }

        if (!System.IO.File.Exists(path))
        {
            if (rootFile is null)
                sigstore.Error($"{Trust.SigstoreTrustRoots.RootErrorCode}: the default Sigstore trusted root '{path}' (${Trust.SigstoreTrustRoots.DefaultRootEnv}) does not exist");
            return; // a missing trustedRoot file is already reported by NamedFile
        }

        try
        {
            Trust.SigstoreTrustRoots.Load(path);
        }
        catch (PipelineException e)
        {
            var hint = "the root must hold every field the Sigstore specification requires; take it unchanged from the TUF repository (scripts/install-sigstore-root.sh)";
            if (rootFile is not null) sigstore.KeyError("trustedRoot", $"{e.Code}: {e.Message}", hint);
            else sigstore.Error($"{e.Code}: the default trusted root: {e.Message}", hint);
        }
    }

    private static string? NamedFile(MappingReader m, string key, string baseDir, bool checkEnvironment)
    {
        var s = m.String(key);
        if (s is null) return null;
        var full = Path.GetFullPath(Path.Combine(baseDir, s));
        if (checkEnvironment && !System.IO.File.Exists(full))
            m.KeyError(key, $"file '{full}' named by '{key}' does not exist");
        return full;
    }
}
