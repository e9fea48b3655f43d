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
    ChecksumSettings Checksums,
    PublishSettings Publish,
    ImageTargetSettings Images)
{
    /// <summary>The checksum manifest's file name at the top of the delivery.</summary>
    public string ChecksumManifest => Checksums.Manifest;

    public TrustSettings Trust { get; init; } = TrustSettings.Default;

    public static readonly Regex NamePattern = new("^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$", RegexOptions.CultureInvariant);

    /// <summary>Which scan policy and profile judge this pipeline's deliveries (null: the built-in strict policy, profile normal).</summary>
    public ScanSelection? Scan { get; init; }

    /// <summary><c>schutzbedarf:</c> normal, hoch or sehr-hoch (null: not declared; required when tenants are configured).</summary>
    public Tenancy.Schutzbedarf? Schutzbedarf { get; init; }

    /// <summary>The pipeline's own stage list (<c>stages:</c>), replacing the engine-wide one; null: the engine's (or the default).</summary>
    public Lifecycle.StagePlan? Stages { get; init; }
}

/// <summary>The <c>scan:</c> block: a policy under <c>pipelines/policies/</c> and one of its profiles.</summary>
public sealed record ScanSelection(string Policy, string Profile);

/// <summary>VCS A: the supplier's repository and which tags are deliveries.</summary>
public sealed record SourceSettings(Uri Url, string? CredentialsFile, Regex TagPattern);

/// <summary>
/// A certified sender: a person or system of the supplier whose key may sign delivery tags, within a
/// validity window, optionally only for some tags. A revoked signer fails for every tag, old or new.
/// </summary>
public sealed record SignerDefinition(
    string Name,
    string Organisation,
    SignerKey Key,
    DateTimeOffset? ValidFrom,
    DateTimeOffset? ValidUntil)
{
    /// <summary>Tag names (regular expressions) this key may sign; empty: every delivery tag.</summary>
    public IReadOnlyList<Regex> TagPatterns { get; init; } = [];

    /// <summary>When the key was revoked, if it was; a revoked key is never accepted again.</summary>
    public DateTimeOffset? RevokedAt { get; init; }

    public string? RevocationReason { get; init; }

    public string Describe() => $"{Name} ({Organisation})";
}

/// <summary>The public key of a certified sender.</summary>
public abstract record SignerKey
{
    /// <summary>SHA256:... for SSH keys, the primary key fingerprint for OpenPGP keys.</summary>
    public abstract string Fingerprint { get; }
}

public sealed record SshSignerKey(Pipeline.Checkup.Signatures.Ssh.SshPublicKey Key) : SignerKey
{
    public override string Fingerprint => Key.Fingerprint;
}

public sealed record OpenPgpSignerKey(Pipeline.Checkup.Signatures.OpenPgp.OpenPgpPublicKeyRing Ring) : SignerKey
{
    public override string Fingerprint => Ring.PrimaryFingerprint;
}

/// <summary>How the engine decides that a delivery comes from a certified sender.</summary>
/// <param name="AcceptSignedCommits">Also accept an unsigned annotated tag whose commit is signed by a certified sender.</param>
/// <param name="AllowDowngrade">Accept a version lower than the last accepted one (rollback); off by default.</param>
public sealed record TrustSettings(bool AcceptSignedCommits, bool AllowDowngrade)
{
    public static TrustSettings Default { get; } = new(false, false);
}

/// <summary>How the checksum manifest itself is protected.</summary>
public enum ManifestSignature
{
    /// <summary>The manifest is part of the signed tag's tree (the default).</summary>
    Tag,

    /// <summary>A detached signature beside it: <c>MANIFEST.sig</c> (SSH, namespace <c>file</c>) or <c>MANIFEST.asc</c> (OpenPGP) by a certified sender.</summary>
    Detached,

    /// <summary>A Sigstore bundle beside it, verified offline against the operator's trusted root.</summary>
    Sigstore,
}

/// <summary>The checksum manifest, how it must be signed, and (for Sigstore) by whom.</summary>
public sealed record ChecksumSettings(string Manifest, ManifestSignature Signature, SigstoreRequirement? Sigstore)
{
    /// <summary>Files beside the manifest that protect it and so cannot be listed in it.</summary>
    public IReadOnlyList<string> SignatureFiles => Signature switch
    {
        ManifestSignature.Detached => [Manifest + ".sig", Manifest + ".asc"],
        ManifestSignature.Sigstore => [Sigstore!.Bundle],
        _ => [],
    };
}

/// <summary>A Sigstore bundle over the manifest: the identity and issuer it must carry, or a public key; the trusted root (default: public-good production).</summary>
public sealed record SigstoreRequirement(string Bundle, string? Identity, string? Issuer, string? PublicKeyFile, string? TrustedRootFile);

/// <summary>VCS B: where the verified tag and its history are pushed (a path below the engine's internal git URL).</summary>
public sealed record PublishSettings(string Repository);

/// <summary>
/// Where images go in the internal registry, which base images deliveries may use, and whether a
/// delivery may let an image run as root (uid 0; off unless the operator allows it explicitly).
/// </summary>
public sealed record ImageTargetSettings(string RepositoryPrefix, IReadOnlyList<string> AllowedBaseImages, bool AllowRoot = false);
