using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Pipeline.Checkup.Signatures.Ssh;

/// <summary>
/// An Ed25519 SSH private key read from an unencrypted OpenSSH key file (<c>ssh-keygen -t ed25519 -N ''</c>),
/// that makes armoured SSH signatures (PROTOCOL.sshsig) as <c>ssh-keygen -Y sign</c> does: git's
/// signed commits (namespace <c>git</c>) verify with <c>git verify-commit</c> and an allowed-signers
/// file. The key bytes are never printed; <see cref="ToString"/> names only the public key.
/// </summary>
public sealed class SshSigner
{
    private const string Begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
    private const string End = "-----END OPENSSH PRIVATE KEY-----";
    private static readonly byte[] AuthMagic = "openssh-key-v1\0"u8.ToArray();
    private readonly Ed25519PrivateKeyParameters _key;

    private SshSigner(Ed25519PrivateKeyParameters key, SshPublicKey publicKey)
    {
        _key = key;
        PublicKey = publicKey;
    }

    /// <summary>The public half (for allowed-signers files and evidence).</summary>
    public SshPublicKey PublicKey { get; }

    /// <summary>Reads an unencrypted OpenSSH Ed25519 private key file.</summary>
    /// <exception cref="CheckupException">CHK-SSH-009 when the file is not such a key (encrypted, another type, malformed).</exception>
    public static SshSigner FromFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckupException(SshErrors.UnusablePrivateKey, $"cannot read the SSH private key '{path}': {e.Message}");
        }

        return Parse(text, path);
    }

    /// <summary>Parses the text of an OpenSSH private key file; <paramref name="source"/> names it in errors.</summary>
    public static SshSigner Parse(string text, string source)
    {
        var start = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        if (start < 0 || end < start)
            throw Unusable(source, $"it holds no '{Begin}' block (write it with ssh-keygen -t ed25519)");
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(string.Concat(text[(start + Begin.Length)..end].Where(c => !char.IsWhiteSpace(c))));
        }
        catch (FormatException)
        {
            throw Unusable(source, "its body is not base64");
        }

        if (blob.Length < AuthMagic.Length || !blob.AsSpan(0, AuthMagic.Length).SequenceEqual(AuthMagic))
            throw Unusable(source, "it is not an openssh-key-v1 key");
        var r = new SshReader(blob.AsSpan(AuthMagic.Length), SshErrors.UnusablePrivateKey, $"SSH private key '{source}'");
        var cipher = r.ReadText();
        var kdf = r.ReadText();
        r.ReadString();
        if (cipher != "none" || kdf != "none")
            throw Unusable(source, "it is encrypted with a passphrase; the engine needs an unencrypted key file readable only by it (mode 0600)");
        if (r.ReadUInt32() != 1) throw Unusable(source, "it must hold exactly one key");
        var publicBlob = r.ReadString().ToArray();
        var priv = new SshReader(r.ReadString(), SshErrors.UnusablePrivateKey, $"SSH private key '{source}'");
        r.EnsureEnd();
        if (priv.ReadUInt32() != priv.ReadUInt32()) throw Unusable(source, "its check bytes differ (a corrupt or encrypted key)");
        var type = priv.ReadText();
        if (type != "ssh-ed25519") throw Unusable(source, $"it is a {type} key; only ssh-ed25519 keys can sign here");
        var pub = priv.ReadString().ToArray();
        var secret = priv.ReadString();
        if (pub.Length != 32 || secret.Length != 64 || !secret[32..].SequenceEqual(pub))
            throw Unusable(source, "its Ed25519 key material is malformed");
        var key = new Ed25519PrivateKeyParameters(secret[..32].ToArray(), 0);
        if (!key.GeneratePublicKey().GetEncoded().AsSpan().SequenceEqual(pub))
            throw Unusable(source, "its private and public halves do not belong together");
        var publicKey = SshPublicKey.FromBlob(publicBlob, null, SshErrors.UnusablePrivateKey);
        return new SshSigner(key, publicKey);
    }

    /// <summary>An armoured SSH signature over <paramref name="message"/> in <paramref name="ns"/> (sha512, as ssh-keygen).</summary>
    public string Sign(ReadOnlySpan<byte> message, string ns)
    {
        ArgumentException.ThrowIfNullOrEmpty(ns);
        var nsBytes = Encoding.UTF8.GetBytes(ns);
        var signed = new MemoryStream();
        signed.Write("SSHSIG"u8);
        WriteString(signed, nsBytes);
        WriteString(signed, []);
        WriteString(signed, "sha512"u8);
        WriteString(signed, SHA512.HashData(message));
        var data = signed.ToArray();

        var signer = new Ed25519Signer();
        signer.Init(true, _key);
        signer.BlockUpdate(data, 0, data.Length);
        var raw = signer.GenerateSignature();

        var sig = new MemoryStream();
        WriteString(sig, "ssh-ed25519"u8);
        WriteString(sig, raw);

        var blob = new MemoryStream();
        blob.Write("SSHSIG"u8);
        Span<byte> version = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(version, 1);
        blob.Write(version);
        WriteString(blob, PublicKey.Blob.Span);
        WriteString(blob, nsBytes);
        WriteString(blob, []);
        WriteString(blob, "sha512"u8);
        WriteString(blob, sig.ToArray());

        var b64 = Convert.ToBase64String(blob.ToArray());
        var text = new StringBuilder("-----BEGIN SSH SIGNATURE-----\n");
        for (var i = 0; i < b64.Length; i += 70) text.Append(b64, i, Math.Min(70, b64.Length - i)).Append('\n');
        return text.Append("-----END SSH SIGNATURE-----\n").ToString();
    }

    public override string ToString() => $"{PublicKey.Type} {PublicKey.Fingerprint}";

    private static CheckupException Unusable(string source, string why) =>
        new(SshErrors.UnusablePrivateKey, $"the SSH private key '{source}' cannot sign: {why}");

    private static void WriteString(MemoryStream ms, ReadOnlySpan<byte> value)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(len, (uint)value.Length);
        ms.Write(len);
        ms.Write(value);
    }
}
