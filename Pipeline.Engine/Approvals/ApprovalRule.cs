namespace Pipeline.Engine.Approvals;

/// <summary>
/// Who must approve the step into a stage (a Freigabe).
/// </summary>
/// <param name="Role">The role an approver must hold (default verfahrensverantwortlich).</param>
/// <param name="Approvers">How many distinct people must approve (default 1; Produktion 2).</param>
/// <param name="FourEyes">The person who requested the promotion never counts as an approver (default true).</param>
/// <param name="RequireSignature">Every approval must carry the approver's own signature (sshsig or OpenPGP) over the canonical approval statement.</param>
/// <param name="ValidFor">How long an approval counts after it was given (null: until the delivery moves).</param>
/// <param name="OnBehalf">A Systempfleger:in may enter the approval for a named approver (default true).</param>
/// <param name="Automatic">No approval: the step happens as soon as the delivery is accepted (first stage only).</param>
public sealed record ApprovalRule(Role Role, int Approvers, bool FourEyes, bool RequireSignature, TimeSpan? ValidFor, bool OnBehalf, bool Automatic)
{
    /// <summary>What made this rule stricter than the stage's own (e.g. "Schutzbedarf sehr-hoch"); null: the stage's rule as configured.</summary>
    public string? RaisedBy { get; init; }

    /// <summary>The default rule of a stage: one Verfahrensverantwortliche:r, two for Produktion; four eyes; no signature.</summary>
    public static ApprovalRule DefaultFor(string stageName) =>
        new(Role.Verfahrensverantwortlich, string.Equals(stageName, "Produktion", StringComparison.OrdinalIgnoreCase) ? 2 : 1, true, false, null, true, false);

    public string Describe() => Automatic
        ? "automatic"
        : $"{Approvers} × {Role.ToString().ToLowerInvariant()}" + (FourEyes ? ", four eyes" : "") + (RequireSignature ? ", signed" : "") +
          (ValidFor is { } v ? $", valid {Durations.Format(v)}" : "") + (RaisedBy is { } r ? $" (raised by {r})" : "");
}

/// <summary>The roles of the people file.</summary>
public enum Role
{
    Systempfleger,
    Verfahrensverantwortlich,
    Sicherheitsteam,
    Auditor,
    Betrieb,
}

/// <summary>Durations written by people: 90m, 72h, 14d.</summary>
public static class Durations
{
    public static bool TryParse(string text, out TimeSpan value)
    {
        value = default;
        if (text.Length < 2 || !int.TryParse(text[..^1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
            return false;
        value = text[^1] switch
        {
            'm' => TimeSpan.FromMinutes(n),
            'h' => TimeSpan.FromHours(n),
            'd' => TimeSpan.FromDays(n),
            _ => TimeSpan.Zero,
        };
        return value > TimeSpan.Zero;
    }

    public static string Format(TimeSpan t) =>
        t.TotalHours != Math.Floor(t.TotalHours) ? $"{(int)t.TotalMinutes}m"
        : t.TotalDays >= 7 && t.TotalDays == Math.Floor(t.TotalDays) ? $"{(int)t.TotalDays}d"
        : $"{(int)t.TotalHours}h";
}
