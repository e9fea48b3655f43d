using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Engine.Attestations;

/// <summary>
/// A public key that verifies attestations and checkpoints: ECDSA P-256 with SHA-256 (ASN.1 DER
/// signatures). <see cref="KeyId"/> is the lowercase hex SHA-256 of the SubjectPublicKeyInfo DER.
/// </summary>
public sealed class VerificationKey
{
    private readonly ECDsa _key;

    private VerificationKey(ECDsa key, byte[] spki)
    {
        _key = key;
        Spki = spki;
        KeyId = Convert.ToHexStringLower(SHA256.HashData(spki));
    }

    public string KeyId { get; }
    public byte[] Spki { get; }

    /// <summary>The first 4 bytes of SHA-256(SPKI): the C2SP signed-note key hint.</summary>
    public byte[] KeyHint => SHA256.HashData(Spki)[..4];

    public string PublicKeyPem => PemEncoding.WriteString("PUBLIC KEY", Spki);

    public static VerificationKey FromSpki(byte[] spki)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(spki, out var read);
            if (read != spki.Length) throw new FormatException("trailing bytes after the public key");
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            key.Dispose();
            throw new PipelineException("ATT-KEY-INVALID", $"not an ECDSA public key (SubjectPublicKeyInfo): {e.Message}");
        }

        if (key.KeySize != 256 || key.ExportParameters(false).Curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            key.Dispose();
            throw new PipelineException("ATT-KEY-UNSUPPORTED", "only ECDSA P-256 keys are supported for attestations");
        }

        return new VerificationKey(key, spki);
    }

    /// <summary>Reads a PEM file holding a PUBLIC KEY, or a private key (its public half is used).</summary>
    public static VerificationKey FromPemFile(string path)
    {
        var text = ReadPem(path);
        var fields = PemEncoding.Find(text);
        var label = text[fields.Label];
        if (label == "PUBLIC KEY") return FromSpki(Convert.FromBase64String(text[fields.Base64Data]));
        using var signing = EngineSigningKey.FromPem(text, path);
        return signing.Public;
    }

    internal static string ReadPem(string path)
    {
        if (!File.Exists(path)) throw new PipelineException("ATT-KEY-MISSING", $"key file '{path}' does not exist");
        var text = File.ReadAllText(path);
        if (!PemEncoding.TryFind(text, out _)) throw new PipelineException("ATT-KEY-INVALID", $"key file '{path}' holds no PEM block");
        return text;
    }

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            return _key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}

/// <summary>The engine's private signing key (ECDSA P-256), read from a PEM file; never logged.</summary>
public sealed class EngineSigningKey : IDisposable
{
    private readonly ECDsa _key;

    private EngineSigningKey(ECDsa key)
    {
        _key = key;
        Public = VerificationKey.FromSpki(key.ExportSubjectPublicKeyInfo());
    }

    public VerificationKey Public { get; }
    public string KeyId => Public.KeyId;

    public static EngineSigningKey Generate() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    public static EngineSigningKey FromPemFile(string path) => FromPem(VerificationKey.ReadPem(path), path);

    internal static EngineSigningKey FromPem(string pem, string source)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256) throw new PipelineException("ATT-KEY-UNSUPPORTED", $"the signing key in '{source}' is not ECDSA P-256");
            key.ExportParameters(true); // throws when only a public key was imported
            return new EngineSigningKey(key);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new PipelineException("ATT-KEY-INVALID", $"'{source}' does not hold an ECDSA P-256 private key in PEM (EC PRIVATE KEY or PRIVATE KEY): {e.GetType().Name}");
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>Writes the private key as PKCS#8 PEM with mode 0600 (the file must not exist yet).</summary>
    public void WritePrivatePem(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        using var f = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        f.Write(Encoding.ASCII.GetBytes(_key.ExportPkcs8PrivateKeyPem() + "\n"));
    }

    public byte[] Sign(ReadOnlySpan<byte> data) => _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.Rfc3279DerSequence);

    public void Dispose() => _key.Dispose();
}

/// <summary>The keys an auditor trusts, by key id: the current signing key and retired ones.</summary>
public sealed class KeyRing
{
    private readonly Dictionary<string, VerificationKey> _byId = new(StringComparer.Ordinal);

    public KeyRing(IEnumerable<VerificationKey> keys)
    {
        foreach (var k in keys) _byId.TryAdd(k.KeyId, k);
    }

    public IReadOnlyCollection<VerificationKey> Keys => _byId.Values;

    public VerificationKey? Find(string keyId) => _byId.GetValueOrDefault(keyId);

    public VerificationKey? FindByHint(ReadOnlySpan<byte> hint)
    {
        foreach (var k in _byId.Values)
        {
            if (k.KeyHint.AsSpan().SequenceEqual(hint)) return k;
        }

        return null;
    }
}
