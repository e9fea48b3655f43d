using System.Text.RegularExpressions;

namespace Pipeline.Engine.Definitions;

/// <summary>
/// One supplier application's pipeline (<c>pipelines/NAME.yaml</c>): where its deliveries come from,
/// who may sign them, where the checked delivery and its images go.
/// </summary>
public sealed record PipelineDefinition(
    string Name,
    string SourceFile,
    string Supplier,
    string? Schedule,
    SourceSettings Source,
    IReadOnlyList<SignerDefinition> Signers,
    string ChecksumManifest,
    PublishSettings Publish,
    ImageTargetSettings Images)
{
    public static readonly Regex NamePattern = new("^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$", RegexOptions.CultureInvariant);

    /// <summary>Which scan policy and profile judge this pipeline's deliveries (null: the built-in strict policy, profile normal).</summary>
    public ScanSelection? Scan { get; init; }
}

/// <summary>The <c>scan:</c> block: a policy under <c>pipelines/policies/</c> and one of its profiles.</summary>
public sealed record ScanSelection(string Policy, string Profile);

/// <summary>VCS A: the supplier's repository and which tags are deliveries.</summary>
public sealed record SourceSettings(Uri Url, string? CredentialsFile, Regex TagPattern);

/// <summary>A certified sender: a person or system of the supplier whose key may sign delivery tags.</summary>
public sealed record SignerDefinition(
    string Name,
    string Organisation,
    string SshPublicKey,
    DateTimeOffset? ValidFrom,
    DateTimeOffset? ValidUntil);

/// <summary>VCS B: where the verified tag and its history are pushed (a path below the engine's internal git URL).</summary>
public sealed record PublishSettings(string Repository);

/// <summary>
/// Where images go in the internal registry, which base images deliveries may use, and whether a
/// delivery may let an image run as root (uid 0; off unless the operator allows it explicitly).
/// </summary>
public sealed record ImageTargetSettings(string RepositoryPrefix, IReadOnlyList<string> AllowedBaseImages, bool AllowRoot = false);
