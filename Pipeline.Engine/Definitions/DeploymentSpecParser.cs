using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Definitions;

/// <summary>
/// Strict parsing of the <c>deployment:</c> section of <c>delivery.yaml</c> (supplier input):
/// unknown keys, paths leaving the delivery, symbolic links, unknown images and bad values are
/// errors, each with its line and a <c>DEPLOY-SPEC-…</c> code at the start of its message.
/// </summary>
public static class DeploymentSpecParser
{
    /// <summary>Parses the section; problems go to the reader's error list. Null when there were any.</summary>
    public static DeploymentSpec? Parse(MappingReader section, string deliveryRoot, IReadOnlyCollection<string> imageNames) =>
        throw new NotImplementedException();
}
