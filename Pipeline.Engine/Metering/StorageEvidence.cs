using System.Globalization;
using System.Text;
using Pipeline.Registry.Copy;

namespace Pipeline.Engine.Metering;

/// <summary>
/// What a promotion records about the storage an image occupies in its stage, in the evidence of its signed
/// statement (<c>REPO.storage</c>): every manifest and distinct blob as <c>sha256:HEX=SIZE</c>, space-separated and
/// sorted, and the total (<c>REPO.storageBytes</c>). The metering report adds the distinct objects of every image
/// in a stage from this, so it runs from the database alone, without asking the registry.
/// </summary>
public static class StorageEvidence
{
    public const string ObjectsSuffix = ".storage";
    public const string TotalSuffix = ".storageBytes";

    /// <summary>The evidence entries for one image in repository <paramref name="repository"/>.</summary>
    public static IEnumerable<KeyValuePair<string, string>> For(string repository, IReadOnlyList<StoredObject> stored)
    {
        var objects = stored.DistinctBy(o => o.Digest).OrderBy(o => o.Digest.ToString(), StringComparer.Ordinal).ToList();
        var text = new StringBuilder();
        foreach (var o in objects)
        {
            if (text.Length > 0) text.Append(' ');
            text.Append(CultureInfo.InvariantCulture, $"{o.Digest}={o.Size}");
        }

        yield return new(repository + ObjectsSuffix, text.ToString());
        yield return new(repository + TotalSuffix, objects.Sum(o => o.Size).ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The objects recorded in one <c>REPO.storage</c> value; null when it is malformed (then the report counts the
    /// image as one without recorded sizes rather than guessing).
    /// </summary>
    public static IReadOnlyList<(string Digest, long Size)>? Parse(string value)
    {
        var list = new List<(string, long)>();
        foreach (var item in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = item.LastIndexOf('=');
            if (eq <= 0 || !item.StartsWith("sha", StringComparison.Ordinal)
                || !long.TryParse(item.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                return null;
            list.Add((item[..eq], size));
        }

        return list;
    }
}
