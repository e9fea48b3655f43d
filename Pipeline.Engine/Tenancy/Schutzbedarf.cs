namespace Pipeline.Engine.Tenancy;

/// <summary>
/// How much protection an application needs (BSI IT-Grundschutz): normal, hoch, sehr hoch. The order
/// matters: a higher level never fits where only a lower one is allowed.
/// </summary>
public enum Schutzbedarf
{
    Normal = 0,
    Hoch = 1,
    SehrHoch = 2,
}

/// <summary>The configuration words for <see cref="Schutzbedarf"/>: <c>normal</c>, <c>hoch</c>, <c>sehr-hoch</c>.</summary>
public static class SchutzbedarfNames
{
    public const string Allowed = "normal, hoch or sehr-hoch";

    public static bool TryParse(string? text, out Schutzbedarf value)
    {
        switch (text)
        {
            case "normal": value = Schutzbedarf.Normal; return true;
            case "hoch": value = Schutzbedarf.Hoch; return true;
            case "sehr-hoch": value = Schutzbedarf.SehrHoch; return true;
            default: value = default; return false;
        }
    }

    /// <summary>The configuration word (also the name of the matching scan profile).</summary>
    public static string Name(this Schutzbedarf s) => s switch
    {
        Schutzbedarf.Hoch => "hoch",
        Schutzbedarf.SehrHoch => "sehr-hoch",
        _ => "normal",
    };

    /// <summary>Reads <paramref name="key"/> as a Schutzbedarf, adding an error with file and line when it is not one.</summary>
    public static Schutzbedarf? Read(Configuration.MappingReader m, string key, bool required = false)
    {
        var text = m.String(key, required, hint: Allowed);
        if (text is null) return null;
        if (TryParse(text, out var s)) return s;
        m.KeyError(key, $"'{(m.Path.Length == 0 ? key : m.Path + "." + key)}' must be {Allowed}, not '{text}'");
        return null;
    }
}
