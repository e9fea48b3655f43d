using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Tenancy;

/// <summary>
/// What a stage environment may host (<c>environment.hosts</c>, operator-owned): the highest
/// Schutzbedarf, and the one tenant it is dedicated to (null: shared by tenants).
/// </summary>
/// <param name="File">The configuration file that declares it (for errors).</param>
/// <param name="Line">The line of the <c>hosts</c> mapping.</param>
public sealed record HostPolicy(Schutzbedarf MaxSchutzbedarf, string? DedicatedTo, string File, int Line)
{
    public bool Shared => DedicatedTo is null;

    public string Describe() => Shared
        ? $"shared, up to {MaxSchutzbedarf.Name()}"
        : $"dedicated to tenant '{DedicatedTo}', up to {MaxSchutzbedarf.Name()}";

    /// <summary><c>hosts: { maxSchutzbedarf: normal|hoch|sehr-hoch, dedicatedTo: TENANT | shared }</c>; both keys required.</summary>
    public static HostPolicy? Parse(MappingReader h)
    {
        var before = h.Errors.All.Count;
        var max = SchutzbedarfNames.Read(h, "maxSchutzbedarf", required: true);
        var dedicated = h.String("dedicatedTo", required: true, hint: "a tenant id, or 'shared'");
        if (dedicated is not null && dedicated != "shared" && !Definitions.PipelineDefinition.NamePattern.IsMatch(dedicated))
            h.KeyError("dedicatedTo", $"'{h.Path}.dedicatedTo' must be a tenant id or 'shared', not '{dedicated}'");
        h.Done();
        return h.Errors.All.Count > before || max is null ? null
            : new HostPolicy(max.Value, dedicated == "shared" ? null : dedicated, h.File, h.Line);
    }
}
