namespace Pipeline.Checkup.Signatures.Ssh;

/// <summary>Stable error codes for SSH signatures (PROTOCOL.sshsig) and SSH public keys.</summary>
public static class SshErrors
{
    /// <summary>The text is not one <c>-----BEGIN SSH SIGNATURE-----</c> block of base64.</summary>
    public const string MalformedArmour = "CHK-SSH-001";
    /// <summary>The blob does not start with <c>SSHSIG</c> or has a version other than 1.</summary>
    public const string BadMagicOrVersion = "CHK-SSH-002";
    /// <summary>The signature was made for another namespace (e.g. <c>file</c> instead of <c>git</c>).</summary>
    public const string WrongNamespace = "CHK-SSH-003";
    /// <summary>Key type, signature algorithm or hash algorithm not accepted (ssh-rsa SHA-1, RSA under 2048 bits, FIDO keys, ...).</summary>
    public const string UnsupportedAlgorithm = "CHK-SSH-004";
    /// <summary>The signing key is not on the allow-list.</summary>
    public const string KeyNotAllowed = "CHK-SSH-005";
    /// <summary>The signature does not verify: the message or signature was altered, or another key signed.</summary>
    public const string SignatureInvalid = "CHK-SSH-006";
    /// <summary>The binary structure (blob, key, signature encoding) is truncated, oversized or has trailing bytes.</summary>
    public const string MalformedBlob = "CHK-SSH-007";
    /// <summary>An authorized_keys / allowed-signers style public key line cannot be parsed.</summary>
    public const string MalformedPublicKey = "CHK-SSH-008";
    /// <summary>A private key file cannot sign: encrypted, not ssh-ed25519, or malformed.</summary>
    public const string UnusablePrivateKey = "CHK-SSH-009";
}
