using System.Security.Cryptography;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>RFC 6962 / RFC 9162 Merkle tree helpers (SHA-256).</summary>
public static class Merkle
{
    /// <summary>Leaf hash: SHA-256(0x00 || leaf).</summary>
    public static byte[] LeafHash(ReadOnlySpan<byte> leaf)
    {
        var buf = new byte[leaf.Length + 1];
        leaf.CopyTo(buf.AsSpan(1));
        return SHA256.HashData(buf);
    }

    /// <summary>Interior node hash: SHA-256(0x01 || left || right).</summary>
    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        var buf = new byte[1 + left.Length + right.Length];
        buf[0] = 1;
        left.CopyTo(buf.AsSpan(1));
        right.CopyTo(buf.AsSpan(1 + left.Length));
        return SHA256.HashData(buf);
    }

    /// <summary>
    /// Recomputes the tree root from an inclusion proof (RFC 9162 §2.1.3.2). Returns null when the
    /// proof has the wrong shape for (index, treeSize) — too short, too long, or index out of range.
    /// </summary>
    public static byte[]? RootFromInclusionProof(long index, long treeSize, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> proof)
    {
        if (index < 0 || treeSize <= 0 || index >= treeSize || leafHash.Length != 32) return null;
        long fn = index, sn = treeSize - 1;
        var r = leafHash.ToArray();
        foreach (var p in proof)
        {
            if (p.Length != 32 || sn == 0) return null;
            if ((fn & 1) == 1 || fn == sn)
            {
                r = NodeHash(p, r);
                if ((fn & 1) == 0)
                {
                    while ((fn & 1) == 0 && fn != 0)
                    {
                        fn >>= 1;
                        sn >>= 1;
                    }
                }
            }
            else
            {
                r = NodeHash(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 ? r : null;
    }
}
