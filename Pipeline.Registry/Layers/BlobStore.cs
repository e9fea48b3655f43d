using System.Security.Cryptography;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Layers;

/// <summary>
/// A content-addressed folder of blobs: <c>&lt;root&gt;/sha256/&lt;hex&gt;</c>. Writes go to a temp file in
/// <c>&lt;root&gt;/tmp</c>, are hashed while written and moved into place only when the digest is known
/// (and equals the expected one, when given). <see cref="OpenRead"/> re-verifies nothing by itself:
/// consumers hash what they read (the registry client does).
/// </summary>
public sealed class BlobStore
{
    public BlobStore(string root)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Path.Combine(Root, Digest.Sha256));
        Directory.CreateDirectory(TempDir);
    }

    /// <summary>The store's root folder.</summary>
    public string Root { get; }

    internal string TempDir => Path.Combine(Root, "tmp");

    /// <summary>The path where a blob with this digest lives (whether or not it exists).</summary>
    public string PathOf(Digest digest) => Path.Combine(Root, digest.Algorithm, digest.Hex);

    /// <summary>True when the blob is present.</summary>
    public bool Contains(Digest digest) => File.Exists(PathOf(digest));

    /// <summary>Opens a stored blob for reading; <c>REG-BLOB-004</c> when absent.</summary>
    public FileStream OpenRead(Digest digest)
    {
        var path = PathOf(digest);
        if (!File.Exists(path)) throw new RegistryException("REG-BLOB-004", $"Blob {digest} is not in the blob store.");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
    }

    /// <summary>
    /// Copies <paramref name="content"/> into the store, hashing (sha256) while writing. When
    /// <paramref name="expected"/> is given and differs, nothing is stored and <c>REG-BLOB-001</c> is thrown.
    /// </summary>
    public async Task<(Digest Digest, long Size, string Path)> PutAsync(Stream content, Digest? expected = null, CancellationToken cancellationToken = default)
    {
        var temp = NewTempPath();
        try
        {
            Digest digest;
            long size;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.Asynchronous))
            using (var hashing = new HashingStream(file, IncrementalHash.CreateHash(expected?.Algorithm == Digest.Sha512 ? HashAlgorithmName.SHA512 : HashAlgorithmName.SHA256), leaveOpen: true))
            {
                await content.CopyToAsync(hashing, cancellationToken).ConfigureAwait(false);
                digest = Digest.FromHash(expected?.Algorithm ?? Digest.Sha256, hashing.GetHash());
                size = hashing.Count;
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            if (expected is not null && expected != digest)
                throw new RegistryException("REG-BLOB-001", $"Blob digest mismatch: expected {expected}, got {digest}; nothing was stored.");
            return (digest, size, Commit(temp, digest));
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Synchronous <see cref="PutAsync"/>.</summary>
    public (Digest Digest, long Size, string Path) Put(Stream content, Digest? expected = null) =>
        PutAsync(content, expected).GetAwaiter().GetResult();

    /// <summary>Stores small in-memory bytes (manifests, configs).</summary>
    public string PutBytes(ReadOnlySpan<byte> bytes, Digest? expected = null)
    {
        var digest = Digest.Compute(bytes);
        if (expected is not null && expected != digest)
            throw new RegistryException("REG-BLOB-001", $"Blob digest mismatch: expected {expected}, got {digest}; nothing was stored.");
        var temp = NewTempPath();
        try
        {
            File.WriteAllBytes(temp, bytes);
            return Commit(temp, digest);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    internal string NewTempPath() => Path.Combine(TempDir, Guid.NewGuid().ToString("N") + ".part");

    /// <summary>Moves a fully written and hashed temp file to its content address.</summary>
    internal string Commit(string tempPath, Digest digest)
    {
        var target = PathOf(digest);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (File.Exists(target))
        {
            File.Delete(tempPath); // same digest = same bytes; keep the existing file
            return target;
        }
        File.Move(tempPath, target, overwrite: false);
        return target;
    }
}
