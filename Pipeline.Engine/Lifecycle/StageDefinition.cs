using System.Text;
using Pipeline.Engine.Approvals;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// One stage of a delivery's path after the intake push (Vorprüfung, Abnahme, …): where its images
/// live, the tag moved onto the image when it enters the stage, and who must approve the step
/// into it. Configured in engine.yaml <c>stages:</c> (engine-wide) or a pipeline's own
/// <c>stages:</c> (replaces the engine-wide list).
/// </summary>
/// <param name="Name">The stage's name as people use it (any letters, e.g. "Vorprüfung").</param>
/// <param name="Tag">The tag moved onto the promoted image in the stage's repository (ASCII, e.g. "vorpruefung").</param>
/// <param name="Registry">The stage's own registry, or null for the engine's registry.</param>
/// <param name="RepositoryPrefix">Prepended to the intake repository: <c>{prefix}/{intake repository}</c>.</param>
/// <param name="Approval">Who must approve the step into this stage.</param>
/// <param name="Environment">Where the stage deploys and verifies (gitops or docker), or null: promotion only.</param>
public sealed record StageDefinition(string Name, string Tag, StageRegistry? Registry, string RepositoryPrefix, ApprovalRule Approval, Deploy.StageEnvironment? Environment = null)
{
    /// <summary>The repository of an intake repository's image in this stage.</summary>
    public string RepositoryFor(string intakeRepository) => RepositoryPrefix + "/" + intakeRepository;
}

/// <summary>A stage's own registry: URL, credentials file (<c>user:password</c>) and CA bundle (PEM), like engine.yaml <c>registry:</c>.</summary>
public sealed record StageRegistry(Uri Url, string? CredentialsFile, string? CaFile);

/// <summary>The ordered stages of one pipeline; index 0 is the first stage after the intake push.</summary>
public sealed record StagePlan(IReadOnlyList<StageDefinition> Stages)
{
    /// <summary>The stage named <paramref name="name"/> (case-insensitive, or by its tag), or null.</summary>
    public StageDefinition? Find(string name) =>
        Stages.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase) || string.Equals(s.Tag, name, StringComparison.OrdinalIgnoreCase));

    public int IndexOf(StageDefinition stage) => Stages.ToList().FindIndex(s => s.Name == stage.Name);

    public StageDefinition Final => Stages[^1];

    /// <summary>The default path: Vorprüfung ► Abnahme ► Schulung ► Produktion (Produktion by two approvers).</summary>
    public static StagePlan Default { get; } = new(
    [
        StageDefaults.Make("Vorprüfung"),
        StageDefaults.Make("Abnahme"),
        StageDefaults.Make("Schulung"),
        StageDefaults.Make("Produktion"),
    ]);
}

/// <summary>Defaults of a stage whose configuration leaves things out.</summary>
public static class StageDefaults
{
    public static StageDefinition Make(string name) =>
        new(name, Slug(name), null, Slug(name), ApprovalRule.DefaultFor(name));

    /// <summary>An ASCII, registry-safe form of a stage name: "Vorprüfung" → "vorpruefung", "Prüf-Umgebung 2" → "pruef-umgebung-2".</summary>
    public static string Slug(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name.ToLowerInvariant())
        {
            switch (c)
            {
                case 'ä': sb.Append("ae"); break;
                case 'ö': sb.Append("oe"); break;
                case 'ü': sb.Append("ue"); break;
                case 'ß': sb.Append("ss"); break;
                case >= 'a' and <= 'z' or >= '0' and <= '9': sb.Append(c); break;
                default:
                    var plain = RemoveDiacritics(c);
                    if (plain is >= 'a' and <= 'z') sb.Append(plain);
                    else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
                    break;
            }
        }

        var slug = sb.ToString().Trim('-');
        return slug.Length == 0 ? "stage" : slug.Length > 64 ? slug[..64].TrimEnd('-') : slug;
    }

    private static char RemoveDiacritics(char c)
    {
        const string From = "àáâãåāçćčèéêëēěìíîïīñńòóôõøōùúûūýÿžźż";
        const string To = "aaaaaaccceeeeeeiiiiinnoooooouuuuyyzzz";
        var i = From.IndexOf(c, StringComparison.Ordinal);
        return i >= 0 ? To[i] : c;
    }
}
