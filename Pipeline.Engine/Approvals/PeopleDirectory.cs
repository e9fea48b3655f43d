using System.Security.Cryptography;
using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Ssh;
using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Approvals;

/// <summary>
/// The people who may act on deliveries, read from the YAML file named by engine.yaml
/// <c>people.file</c> (maintained by the operator, like the auditor token file):
/// <code>
/// people:
///   - name: Anna Beispiel
///     roles: [verfahrensverantwortlich]
///     tenants: [land-a]                 # with engine.yaml tenants: required; ["*"] for operator-wide staff
///     pipelines: [fachverfahren-a]      # or ["*"]; with tenants optional (default: all of the tenants' pipelines)
///     tokenSha256: 9f86d0…              # printf %s TOKEN | sha256sum
///     sshKey: ssh-ed25519 AAAA… anna    # optional: for signed Freigaben
/// </code>
/// Tokens are never stored: a presented token is hashed and compared with every person's hash in
/// constant time. With tenants (<see cref="Tenancy.TenantDirectory"/>) every person belongs to
/// tenants and sees and acts only inside them (<see cref="Person.TenantPipelines"/>).
/// </summary>
public sealed class PeopleDirectory
{
    private readonly IReadOnlyList<(Person Person, byte[] TokenHash)> _people;

    private PeopleDirectory(IReadOnlyList<(Person, byte[])> people) => _people = people;

    public IReadOnlyList<Person> People => _people.Select(p => p.Person).ToList();

    /// <summary>An empty directory: nobody can act (the engine still runs automatic steps).</summary>
    public static PeopleDirectory Empty { get; } = new([]);

    /// <summary>Reads and validates the file; every problem is added to <paramref name="errors"/> with file and line.</summary>
    public static PeopleDirectory? Load(string file, ConfigErrors errors, Tenancy.TenantDirectory? tenants = null)
    {
        if (!File.Exists(file))
        {
            errors.Add(file, 0, 0, "people file not found", "create it or fix engine.yaml people.file");
            return null;
        }

        return Parse(file, File.ReadAllText(file), errors, tenants);
    }

    /// <summary>Parses a people file; null (with errors added) when anything is wrong.</summary>
    public static PeopleDirectory? Parse(string file, string text, ConfigErrors errors, Tenancy.TenantDirectory? tenants = null)
    {
        tenants ??= Tenancy.TenantDirectory.Empty;
        var root = YamlReader.Load(file, text, errors);
        if (root is null) return null;
        var before = errors.All.Count;
        var list = new List<(Person, byte[])>();
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".";
        foreach (var m in root.MappingList("people", required: true))
        {
            var name = m.String("name", required: true);
            var roles = new HashSet<Role>();
            foreach (var r in m.StringList("roles", required: true))
            {
                if (Enum.TryParse<Role>(r, ignoreCase: true, out var role) && r.All(char.IsLetter)) roles.Add(role);
                else m.KeyError("roles", $"unknown role '{r}' in '{m.Path}.roles'", "roles: systempfleger, verfahrensverantwortlich, sicherheitsteam, auditor, betrieb");
            }

            var memberOf = m.StringList("tenants");
            var pipelines = m.StringList("pipelines", required: !tenants.Configured || memberOf.Count == 0);
            foreach (var p in pipelines)
            {
                if (p != "*" && !Definitions.PipelineDefinition.NamePattern.IsMatch(p))
                    m.KeyError("pipelines", $"'{p}' in '{m.Path}.pipelines' is not a pipeline name (or \"*\" for every pipeline)");
            }

            var scope = PersonTenancy.Check(m, tenants, memberOf, pipelines);
            if (tenants.Configured && pipelines.Count == 0) pipelines = ["*"];

            var hashText = m.String("tokenSha256", required: true, hint: "printf %s TOKEN | sha256sum");
            byte[]? hash = null;
            if (hashText is not null)
            {
                var hex = hashText.StartsWith("sha256:", StringComparison.OrdinalIgnoreCase) ? hashText[7..] : hashText;
                if (hex.Length == 64 && hex.All(Uri.IsHexDigit)) hash = Convert.FromHexString(hex);
                else m.KeyError("tokenSha256", $"'{m.Path}.tokenSha256' must be the SHA-256 of the person's token as 64 hex digits, not a token or other text", "printf %s TOKEN | sha256sum");
            }

            SshPublicKey? ssh = null;
            if (m.String("sshKey") is { } sshText)
            {
                try
                {
                    ssh = SshPublicKey.Parse(sshText);
                }
                catch (CheckupException e)
                {
                    m.KeyError("sshKey", $"'{m.Path}.sshKey' is not a usable SSH public key: {e.Message}");
                }
            }

            OpenPgpPublicKeyRing? pgp = null;
            string? pgpText = null;
            var pgpInline = m.String("openpgpKey");
            var pgpFile = m.String("openpgpKeyFile") is { } f ? Path.GetFullPath(Path.Combine(baseDir, f)) : null;
            if (pgpInline is not null && pgpFile is not null)
                m.Error($"'{m.Path}' takes 'openpgpKey' or 'openpgpKeyFile', not both");
            else if (pgpFile is not null && !File.Exists(pgpFile))
                m.KeyError("openpgpKeyFile", $"file '{pgpFile}' named by 'openpgpKeyFile' does not exist");
            else if ((pgpInline ?? (pgpFile is null ? null : File.ReadAllText(pgpFile))) is { } armored)
            {
                try
                {
                    pgp = OpenPgpPublicKeyRing.Parse(armored);
                    pgpText = armored;
                }
                catch (CheckupException e)
                {
                    m.KeyError(pgpInline is not null ? "openpgpKey" : "openpgpKeyFile", $"'{m.Path}' has no usable OpenPGP public key: {e.Message}");
                }
            }

            m.Done();
            if (name is null || hash is null) continue;
            if (list.Any(x => x.Item1.Name == name)) m.KeyError("name", $"person '{name}' is listed twice");
            else if (list.Any(x => CryptographicOperations.FixedTimeEquals(x.Item2, hash)))
                m.KeyError("tokenSha256", $"'{name}' has the same token hash as another person; every person needs their own token");
            else list.Add((new Person(name, roles, pipelines, ssh, pgp) { OpenPgpKeyText = pgpText, Tenants = memberOf, TenantPipelines = scope }, hash));
        }

        root.Done();
        return errors.All.Count > before ? null : new PeopleDirectory(list);
    }

    /// <summary>The person whose token this is, or null. Every person's hash is compared, in constant time each.</summary>
    public Actor? Authenticate(string? token, string channel)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 4096) return null;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        Person? found = null;
        foreach (var (person, hash) in _people)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, hash)) found ??= person;
        }

        return found is null ? null : new Actor(found, channel);
    }

    /// <summary>The person named <paramref name="name"/> (exact, then case-insensitive), or null.</summary>
    public Person? Find(string name) =>
        _people.Select(p => p.Person).FirstOrDefault(p => p.Name == name)
        ?? _people.Select(p => p.Person).FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
}
