using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;

namespace Pipeline.Engine.Tenancy;

/// <summary>
/// Checks tenants against the pipelines and stage environments, all errors at once with file and
/// line. Without tenants nothing is required; with tenants (fail closed) every pipeline belongs to
/// exactly one tenant and declares its Schutzbedarf, every tenant's pipeline exists, and every
/// stage environment declares <c>hosts:</c> naming a known tenant or <c>shared</c>.
/// </summary>
public static class TenancyValidator
{
    /// <exception cref="ConfigurationException">every problem found.</exception>
    public static void Validate(EngineSettings settings, IReadOnlyList<PipelineDefinition> pipelines)
    {
        var errors = new ConfigErrors();
        Check(settings.Tenants, settings.Stages, pipelines, errors);
        errors.ThrowIfAny();
    }

    public static void Check(TenantDirectory tenants, Lifecycle.StagePlan? engineStages, IReadOnlyList<PipelineDefinition> pipelines, ConfigErrors errors)
    {
        if (!tenants.Configured) return;
        foreach (var t in tenants.Tenants)
        {
            foreach (var p in t.Pipelines.Where(p => pipelines.All(d => d.Name != p)))
                errors.Add(t.File, t.Line, 1, $"tenant '{t.Id}' names the pipeline '{p}', which is not configured", "list only pipelines that have a file in the pipelines folder");
        }

        foreach (var d in pipelines)
        {
            if (tenants.TenantOf(d.Name) is null)
                errors.Add(d.SourceFile, 1, 1, $"pipeline '{d.Name}' belongs to no tenant", "add it to one tenant's 'pipelines' in engine.yaml 'tenants:'");
            if (d.Schutzbedarf is null)
                errors.Add(d.SourceFile, 1, 1, $"pipeline '{d.Name}' declares no 'schutzbedarf' (required when tenants are configured)", "add 'schutzbedarf: " + SchutzbedarfNames.Allowed.Replace(", ", "|", StringComparison.Ordinal).Replace(" or ", "|", StringComparison.Ordinal) + "'");
        }

        var stages = (engineStages?.Stages ?? []).Concat(pipelines.SelectMany(p => p.Stages?.Stages ?? []));
        foreach (var s in stages)
        {
            if (s.Environment is not { } env) continue;
            if (env.Hosts is not { } h)
                errors.Add(env.Source.File ?? "", env.Source.Line, 1, $"the environment of stage '{s.Name}' declares no 'hosts:' (required when tenants are configured)",
                    "add 'hosts: { maxSchutzbedarf: normal|hoch|sehr-hoch, dedicatedTo: <tenant id> | shared }'");
            else if (h.DedicatedTo is { } owner && tenants.Find(owner) is null)
                errors.Add(h.File, h.Line, 1, $"the environment of stage '{s.Name}' is dedicated to the unknown tenant '{owner}'", "known tenants: " + string.Join(", ", tenants.Tenants.Select(t => t.Id)));
        }
    }
}
