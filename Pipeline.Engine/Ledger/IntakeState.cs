namespace Pipeline.Engine.Ledger;

/// <summary>
/// Where a delivery's intake is, as recorded in <c>deliveries.intake_state</c>: the last step it
/// recorded. Each change is written in the same transaction as the ledger entry that causes it
/// (<see cref="LedgerStore.AppendStepAsync"/>), so the state and the log never disagree.
/// </summary>
public enum IntakeState
{
    /// <summary>The delivery row exists; no step is recorded yet.</summary>
    Started,
    Fetched,
    Verified,
    Scanned,
    Published,
    Built,

    /// <summary>Every step passed and is recorded: the images are in the registry. A crash from here on is resumed to accepted.</summary>
    Pushed,

    /// <summary>Acceptance finished (attestations attached, status accepted).</summary>
    Accepted,

    /// <summary>A step's failure is recorded; the delivery is rejected or pending (its status says which).</summary>
    Failed,

    /// <summary>A shutdown or a crash cut it off; recorded as interrupted (<c>ENG-CANCELLED</c>/<c>ENG-INTERRUPTED</c>) and retried as a new attempt.</summary>
    Interrupted,
}

/// <summary>
/// The intake state machine: which transitions are allowed. A step that passes moves the delivery
/// one state on (fetch: started → fetched … push: built → pushed); a step that fails moves it to
/// failed; a shutdown or crash before acceptance to interrupted (also from failed: the failure was
/// recorded, the decision not); pushed → accepted. Accepted and interrupted are final. Anything
/// else is refused with <c>INTAKE-TRANSITION-ILLEGAL</c>.
/// </summary>
public static class IntakeStateMachine
{
    public const string IllegalCode = "INTAKE-TRANSITION-ILLEGAL";
    public const string ConflictCode = "INTAKE-STATE-CONFLICT";

    /// <summary>The intake steps in order, each with the state its pass leads to.</summary>
    public static readonly IReadOnlyList<(string Step, IntakeState After)> Steps =
    [
        ("fetch", IntakeState.Fetched), ("verify", IntakeState.Verified), ("scan", IntakeState.Scanned),
        ("publish", IntakeState.Published), ("build", IntakeState.Built), ("push", IntakeState.Pushed),
    ];

    /// <summary>The state a delivery must be in for <paramref name="step"/> to run (the state its predecessor's pass left).</summary>
    public static IntakeState Before(string step)
    {
        var i = IndexOf(step);
        return i == 0 ? IntakeState.Started : Steps[i - 1].After;
    }

    /// <summary>The state a passed <paramref name="step"/> leads to.</summary>
    public static IntakeState After(string step) => Steps[IndexOf(step)].After;

    public static bool IsAllowed(IntakeState from, IntakeState to) => from switch
    {
        IntakeState.Accepted or IntakeState.Interrupted => false,
        IntakeState.Failed => to == IntakeState.Interrupted,
        IntakeState.Pushed => to is IntakeState.Accepted or IntakeState.Interrupted,
        _ => to == from + 1 || to is IntakeState.Failed or IntakeState.Interrupted,
    };

    /// <summary>Throws <see cref="IntakeTransitionException"/> (<c>INTAKE-TRANSITION-ILLEGAL</c>) unless <paramref name="from"/> → <paramref name="to"/> is allowed.</summary>
    public static void Ensure(Guid deliveryId, IntakeState from, IntakeState to)
    {
        if (!IsAllowed(from, to))
            throw new IntakeTransitionException(IllegalCode,
                $"delivery {deliveryId} cannot go from intake state {Name(from)} to {Name(to)}; allowed from {Name(from)}: " +
                (Enum.GetValues<IntakeState>().Where(t => IsAllowed(from, t)).Select(Name).DefaultIfEmpty("nothing (final)").Aggregate((a, b) => a + ", " + b)));
    }

    /// <summary>The name stored in the database.</summary>
    public static string Name(IntakeState state) => state.ToString().ToLowerInvariant();

    public static IntakeState Parse(string text) =>
        Enum.TryParse<IntakeState>(text, ignoreCase: true, out var s) && Enum.IsDefined(s) && !int.TryParse(text, out _)
            ? s
            : throw new IntakeTransitionException("INTAKE-STATE-UNKNOWN", $"'{text}' is not an intake state");

    private static int IndexOf(string step)
    {
        for (var i = 0; i < Steps.Count; i++)
            if (Steps[i].Step == step) return i;
        throw new IntakeTransitionException("INTAKE-STEP-UNKNOWN", $"'{step}' is not an intake step; they are {string.Join(", ", Steps.Select(s => s.Step))}");
    }
}

/// <summary>A refused intake transition (<c>INTAKE-TRANSITION-ILLEGAL</c>, <c>INTAKE-STATE-CONFLICT</c>…): nothing was recorded.</summary>
public sealed class IntakeTransitionException(string code, string message) : PipelineException(code, message);
