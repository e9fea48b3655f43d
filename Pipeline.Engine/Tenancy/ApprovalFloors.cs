using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Lifecycle;

namespace Pipeline.Engine.Tenancy;

/// <summary>
/// The least a Freigabe must demand for an application of one Schutzbedarf.
/// </summary>
/// <param name="Approvers">Distinct approvers for every stage that needs a Freigabe.</param>
/// <param name="FinalApprovers">Distinct approvers for the last stage of the path (Produktion).</param>
/// <param name="Signed">Every Freigabe must carry the approver's own signature.</param>
public sealed record ApprovalFloor(int Approvers, int FinalApprovers, bool Signed)
{
    /// <summary>No floor: the stage's own rule stands.</summary>
    public static ApprovalFloor None { get; } = new(1, 1, false);

    /// <summary>
    /// The stage's rule made stricter, never weaker, by this floor: more approvers and a required
    /// signature are taken over, nothing is ever lowered or switched off. Automatic stages (the
    /// intake step, first stage only) stay automatic; four eyes is switched on when the floor raises anything.
    /// </summary>
    public ApprovalRule Raise(ApprovalRule rule, bool finalStage, Schutzbedarf level)
    {
        if (rule.Automatic) return rule;
        var approvers = Math.Max(rule.Approvers, finalStage ? FinalApprovers : Approvers);
        var signed = rule.RequireSignature || Signed;
        if (approvers == rule.Approvers && signed == rule.RequireSignature) return rule;
        return rule with { Approvers = approvers, RequireSignature = signed, FourEyes = true, RaisedBy = "Schutzbedarf " + level.Name() };
    }
}

/// <summary>
/// engine.yaml <c>approvalFloors:</c> (only with <c>tenants:</c>): per Schutzbedarf the least every
/// Freigabe of such an application demands. Absent levels keep their defaults:
/// normal none; hoch two approvers for the last stage (Produktion); sehr-hoch two for the last
/// stage and a signed Freigabe into every stage.
/// <code>
/// approvalFloors:
///   hoch:      { approvers: 1, finalApprovers: 2, signed: false }
///   sehr-hoch: { approvers: 1, finalApprovers: 2, signed: true }
/// </code>
/// </summary>
public sealed record ApprovalFloors(ApprovalFloor Normal, ApprovalFloor Hoch, ApprovalFloor SehrHoch)
{
    public static ApprovalFloors Defaults { get; } = new(ApprovalFloor.None, new(1, 2, false), new(1, 2, true));

    public ApprovalFloor For(Schutzbedarf level) => level switch
    {
        Schutzbedarf.Hoch => Hoch,
        Schutzbedarf.SehrHoch => SehrHoch,
        _ => Normal,
    };

    /// <summary>The plan with every stage's rule raised to the floor of <paramref name="level"/>.</summary>
    public StagePlan Apply(StagePlan plan, Schutzbedarf level)
    {
        var floor = For(level);
        var stages = plan.Stages.Select((s, i) => s with { Approval = floor.Raise(s.Approval, i == plan.Stages.Count - 1, level) }).ToList();
        return stages.SequenceEqual(plan.Stages) ? plan : new StagePlan(stages);
    }

    /// <summary>
    /// The <c>approvalFloors:</c> mapping of <paramref name="root"/> (absent: <see cref="Defaults"/>),
    /// every error added to the reader's errors: ranges, the last stage below the others, a higher
    /// level weaker than a lower one, the setting without tenants.
    /// </summary>
    public static ApprovalFloors Parse(MappingReader root, bool tenantsConfigured, string key = "approvalFloors")
    {
        if (!root.Has(key)) return Defaults;
        var m = root.Mapping(key, required: true);
        if (m is null) return Defaults;
        if (!tenantsConfigured)
            root.KeyError(key, $"'{key}' applies only when 'tenants:' are configured (applications without tenants declare no Schutzbedarf)", "add 'tenants:' or remove 'approvalFloors:'");
        var normal = Level(m, "normal", Defaults.Normal);
        var hoch = Level(m, "hoch", Defaults.Hoch);
        var sehrHoch = Level(m, "sehr-hoch", Defaults.SehrHoch);
        m.Done();
        void Order(string lower, ApprovalFloor a, string higher, ApprovalFloor b)
        {
            if (b.Approvers < a.Approvers || b.FinalApprovers < a.FinalApprovers || (a.Signed && !b.Signed))
                m.KeyError(m.Has(higher) ? higher : lower, $"'{m.Path}.{higher}' must be at least as strict as '{lower}' (a higher Schutzbedarf never needs less)",
                    $"{lower}: {Describe(a)}; {higher}: {Describe(b)}");
        }

        Order("normal", normal, "hoch", hoch);
        Order("hoch", hoch, "sehr-hoch", sehrHoch);
        return new ApprovalFloors(normal, hoch, sehrHoch);
    }

    public static string Describe(ApprovalFloor f) => $"approvers {f.Approvers}, finalApprovers {f.FinalApprovers}, signed {(f.Signed ? "true" : "false")}";

    private static ApprovalFloor Level(MappingReader m, string key, ApprovalFloor fallback)
    {
        if (!m.Has(key)) return fallback;
        var l = m.Mapping(key, required: true);
        if (l is null) return fallback;
        var approvers = l.Int("approvers", 1, 10) ?? fallback.Approvers;
        var final = l.Int("finalApprovers", 1, 10) ?? Math.Max(fallback.FinalApprovers, approvers);
        var signed = l.Bool("signed") ?? fallback.Signed;
        if (final < approvers)
            l.KeyError("finalApprovers", $"'{l.Path}.finalApprovers' ({final}) must not be less than '{l.Path}.approvers' ({approvers})", "the last stage (Produktion) needs at least as many approvers as the others");
        l.Done();
        return new ApprovalFloor(approvers, final, signed);
    }
}
