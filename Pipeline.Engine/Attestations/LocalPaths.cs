using Pipeline.Engine.Stages;

namespace Pipeline.Engine.Attestations;

/// <summary>
/// Keeps the engine's local paths out of signed text: a statement is published with the image and
/// kept forever, and the engine's folders say nothing about the delivery. Each known root (the
/// delivery's work folder, the engine's work folder, the pipelines folder, the temp folder) is
/// replaced by a placeholder; what follows it (a path inside the delivery) is kept.
/// </summary>
public static class LocalPaths
{
    public static string Scrub(string text, DeliveryContext ctx) =>
        Scrub(text, [(ctx.WorkDir, "<delivery>"), (ctx.Settings.WorkDir, "<workDir>"), (ctx.Settings.PipelinesDir, "<pipelines>"), (Path.GetTempPath(), "<tmp>")]);

    /// <summary>Replaces each root (longest first, with or without a trailing separator) by its placeholder.</summary>
    public static string Scrub(string text, IEnumerable<(string Root, string Placeholder)> roots)
    {
        foreach (var (root, placeholder) in roots.Select(r => (r.Root.TrimEnd(Path.DirectorySeparatorChar), r.Placeholder)).Where(r => r.Item1.Length > 1).OrderByDescending(r => r.Item1.Length))
            text = text.Replace(root, placeholder, StringComparison.Ordinal);
        return text;
    }
}
