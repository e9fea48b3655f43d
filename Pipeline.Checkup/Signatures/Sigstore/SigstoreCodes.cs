namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>Stable error codes thrown (as <see cref="CheckupException.Code"/>) by the Sigstore verifier.</summary>
public static class SigstoreCodes
{
    /// <summary>The bundle JSON is malformed, has an unknown media type, bad base64, or missing/invalid fields.</summary>
    public const string BundleMalformed = "SIG-SIGSTORE-BUNDLE-MALFORMED";
    /// <summary>The trusted root JSON is malformed.</summary>
    public const string TrustedRootMalformed = "SIG-SIGSTORE-TRUSTED-ROOT-MALFORMED";
    /// <summary>The verification policy does not fit the bundle (e.g. key-signed bundle but no key given).</summary>
    public const string PolicyMismatch = "SIG-SIGSTORE-POLICY-MISMATCH";
    /// <summary>The public key given in the policy cannot be parsed.</summary>
    public const string KeyInvalid = "SIG-SIGSTORE-KEY-INVALID";
    /// <summary>The signing certificate does not chain to a trusted Fulcio CA at the verified time(s).</summary>
    public const string CertChain = "SIG-SIGSTORE-CERT-CHAIN";
    /// <summary>No valid embedded SCT from a trusted CT log.</summary>
    public const string Sct = "SIG-SIGSTORE-SCT";
    /// <summary>The certificate identity (SAN) does not match the policy.</summary>
    public const string Identity = "SIG-SIGSTORE-IDENTITY";
    /// <summary>The certificate OIDC issuer does not match the policy.</summary>
    public const string Issuer = "SIG-SIGSTORE-ISSUER";
    /// <summary>The artifact does not match the signed digest / in-toto subject.</summary>
    public const string ArtifactMismatch = "SIG-SIGSTORE-ARTIFACT-MISMATCH";
    /// <summary>The message signature does not verify.</summary>
    public const string MessageSignature = "SIG-SIGSTORE-MESSAGE-SIG";
    /// <summary>The DSSE envelope signature does not verify.</summary>
    public const string DsseSignature = "SIG-SIGSTORE-DSSE-SIG";
    /// <summary>No transparency log entry, or an entry from an unknown log.</summary>
    public const string TlogMissing = "SIG-SIGSTORE-TLOG-MISSING";
    /// <summary>The transparency log entry body does not match the bundle content.</summary>
    public const string TlogEntryMismatch = "SIG-SIGSTORE-TLOG-ENTRY-MISMATCH";
    /// <summary>The inclusion proof is missing or does not recompute to the checkpoint root.</summary>
    public const string TlogInclusion = "SIG-SIGSTORE-TLOG-INCLUSION";
    /// <summary>The checkpoint (signed note) cannot be parsed.</summary>
    public const string CheckpointMalformed = "SIG-SIGSTORE-CHECKPOINT-MALFORMED";
    /// <summary>The checkpoint has no valid signature from the log's key.</summary>
    public const string CheckpointSignature = "SIG-SIGSTORE-CHECKPOINT-SIG";
    /// <summary>The signed entry timestamp (inclusion promise) is missing or invalid.</summary>
    public const string Set = "SIG-SIGSTORE-SET";
    /// <summary>An RFC 3161 timestamp is invalid, untrusted, or does not cover the signature.</summary>
    public const string Tsa = "SIG-SIGSTORE-TSA";
    /// <summary>No verified time source (integrated time or RFC 3161 timestamp) is available.</summary>
    public const string TimestampMissing = "SIG-SIGSTORE-TIMESTAMP-MISSING";
    /// <summary>The transparency log key was not valid at the entry's time.</summary>
    public const string TlogKeyValidity = "SIG-SIGSTORE-TLOG-KEY-VALIDITY";
}
