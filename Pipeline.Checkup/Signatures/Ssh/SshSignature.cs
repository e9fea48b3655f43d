using System.Text;

namespace Pipeline.Checkup.Signatures.Ssh;

/// <summary>
/// A parsed armoured SSH signature (PROTOCOL.sshsig): the signer's public key, namespace, hash
/// algorithm and the raw SSH signature. Parsing checks structure only; <see cref="SshSignatureVerifier"/>
/// decides whether it is valid.
/// </summary>
public sealed class SshSignature
{
    private const string Begin = "-----BEGIN SSH SIGNATURE-----";
    private const string End = "-----END SSH SIGNATURE-----";
    private const int MaxArmouredLength = 64 * 1024;
    private static readonly byte[] Magic = "SSHSIG"u8.ToArray();

    private SshSignature(SshPublicKey publicKey, string ns, byte[] reserved, string hashAlgorithm, string signatureAlgorithm, byte[] signatureBlob)
    {
        PublicKey = publicKey;
        Namespace = ns;
        Reserved = reserved;
        HashAlgorithm = hashAlgorithm;
        SignatureAlgorithm = signatureAlgorithm;
        SignatureBlob = signatureBlob;
    }

    /// <summary>The key that claims to have signed (not yet trusted).</summary>
    public SshPublicKey PublicKey { get; }

    /// <summary>The namespace the signer chose (git uses <c>git</c>).</summary>
    public string Namespace { get; }

    /// <summary>The reserved field; always empty (a non-empty one is rejected when parsing).</summary>
    public ReadOnlyMemory<byte> Reserved { get; }

    /// <summary><c>sha256</c> or <c>sha512</c>.</summary>
    public string HashAlgorithm { get; }

    /// <summary>The SSH signature algorithm, e.g. <c>ssh-ed25519</c> or <c>rsa-sha2-512</c>.</summary>
    public string SignatureAlgorithm { get; }

    internal byte[] SignatureBlob { get; }

    /// <summary>Parses an armoured signature as written by <c>ssh-keygen -Y sign</c> or stored in a git tag.</summary>
    public static SshSignature Parse(string armored)
    {
        ArgumentNullException.ThrowIfNull(armored);
        if (armored.Length > MaxArmouredLength)
            throw new CheckupException(SshErrors.MalformedArmour, $"The SSH signature is longer than {MaxArmouredLength} characters.");
        var lines = armored.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var last = lines.Length - 1;
        while (last >= 0 && lines[last].Length == 0) last--;
        if (last < 1 || lines[0] != Begin || lines[last] != End)
            throw new CheckupException(SshErrors.MalformedArmour,
                $"An SSH signature must start with a '{Begin}' line and end with a '{End}' line.");
        var b64 = new StringBuilder();
        for (var i = 1; i < last; i++)
        {
            foreach (var c in lines[i])
                if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '='))
                    throw new CheckupException(SshErrors.MalformedArmour, $"Line {i + 1} of the SSH signature contains a character that is not base64.");
            b64.Append(lines[i]);
        }
        if (b64.Length == 0)
            throw new CheckupException(SshErrors.MalformedArmour, "The SSH signature has no body between its header and footer.");
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(b64.ToString());
        }
        catch (FormatException)
        {
            throw new CheckupException(SshErrors.MalformedArmour, "The body of the SSH signature is not valid base64.");
        }
        return FromBlob(blob);
    }

    private static SshSignature FromBlob(ReadOnlySpan<byte> blob)
    {
        if (blob.Length < Magic.Length + 4 || !blob[..Magic.Length].SequenceEqual(Magic))
            throw new CheckupException(SshErrors.BadMagicOrVersion, "The signature blob does not start with the SSHSIG magic.");
        var r = new SshReader(blob[Magic.Length..], SshErrors.MalformedBlob, "SSH signature blob");
        var version = r.ReadUInt32();
        if (version != 1)
            throw new CheckupException(SshErrors.BadMagicOrVersion, $"SSH signature version {version} is not supported (only version 1).");
        var keyBlob = r.ReadString();
        var ns = r.ReadText();
        var reserved = r.ReadString().ToArray();
        var hash = r.ReadText();
        var signature = r.ReadString();
        r.EnsureEnd();
        if (ns.Length == 0)
            throw new CheckupException(SshErrors.MalformedBlob, "Malformed SSH signature blob: the namespace is empty.");
        if (reserved.Length != 0)
            throw new CheckupException(SshErrors.MalformedBlob,
                "Malformed SSH signature blob: the reserved field is not empty. ssh-keygen ignores it without signing it; we refuse it rather than accept unsigned data.");
        if (hash is not ("sha256" or "sha512"))
            throw new CheckupException(SshErrors.UnsupportedAlgorithm, $"Hash algorithm '{SshPublicKey.Printable(hash)}' is not supported (sha256, sha512).");

        var key = SshPublicKey.FromBlob(keyBlob, null, SshErrors.MalformedBlob);
        var sr = new SshReader(signature, SshErrors.MalformedBlob, "SSH signature");
        var algorithm = sr.ReadText();
        var sigBlob = sr.ReadString().ToArray();
        sr.EnsureEnd();
        return new SshSignature(key, ns, reserved, hash, algorithm, sigBlob);
    }

    /// <summary>The bytes the signer signed: MAGIC_PREAMBLE, namespace, reserved, hash_algorithm, H(message).</summary>
    internal byte[] SignedData(ReadOnlySpan<byte> message)
    {
        var digest = HashAlgorithm == "sha256"
            ? System.Security.Cryptography.SHA256.HashData(message)
            : System.Security.Cryptography.SHA512.HashData(message);
        var ms = new MemoryStream();
        ms.Write(Magic);
        WriteString(ms, Encoding.UTF8.GetBytes(Namespace));
        WriteString(ms, Reserved.Span);
        WriteString(ms, Encoding.ASCII.GetBytes(HashAlgorithm));
        WriteString(ms, digest);
        return ms.ToArray();
    }

    private static void WriteString(MemoryStream ms, ReadOnlySpan<byte> value)
    {
        Span<byte> len = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(len, (uint)value.Length);
        ms.Write(len);
        ms.Write(value);
    }
}
