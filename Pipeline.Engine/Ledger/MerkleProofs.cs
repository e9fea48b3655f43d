using System.Numerics;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Reads one stored tree node: the hash of the perfect subtree at <c>level</c> covering leaves
/// <c>[index·2^level, (index+1)·2^level)</c>. Level 0 is the leaf hashes.
/// </summary>
public delegate byte[] NodeReader(int level, long index);

/// <summary>
/// RFC 9162 (RFC 6962) Merkle tree functions over stored perfect-subtree nodes: roots, inclusion and
/// consistency proofs are computed from O(log n) stored nodes, never by rehashing the log.
/// Leaf and node hashing, and inclusion verification, are <see cref="Merkle"/> in Pipeline.Checkup
/// (one implementation for Sigstore and the ledger).
/// </summary>
public static class MerkleProofs
{
    /// <summary>Nodes to store when leaf <paramref name="index"/> is appended: the leaf itself, and every perfect subtree it completes.</summary>
    public static IReadOnlyList<(int Level, long Index, byte[] Hash)> NodesCompletedBy(long index, byte[] leafHash, NodeReader read)
    {
        var list = new List<(int, long, byte[])> { (0, index, leafHash) };
        var level = 0;
        var i = index;
        var h = leafHash;
        while ((i & 1) == 1)
        {
            h = Merkle.NodeHash(read(level, i - 1), h);
            level++;
            i >>= 1;
            list.Add((level, i, h));
        }

        return list;
    }

    /// <summary>MTH(D[0:size]); the empty tree's root is SHA-256 of the empty string.</summary>
    public static byte[] Root(long size, NodeReader read)
    {
        if (size < 0) throw new ArgumentOutOfRangeException(nameof(size));
        return size == 0 ? System.Security.Cryptography.SHA256.HashData([]) : Range(0, size, read);
    }

    /// <summary>MTH(D[start:end]) for a range the RFC recursion produces (start aligned to the split).</summary>
    internal static byte[] Range(long start, long end, NodeReader read)
    {
        var n = end - start;
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(end));
        if (BitOperations.IsPow2(n) && start % n == 0)
        {
            var level = BitOperations.Log2((ulong)n);
            return read(level, start >> level);
        }

        var k = SplitPoint(n);
        return Merkle.NodeHash(Range(start, start + k, read), Range(start + k, end, read));
    }

    /// <summary>The largest power of two smaller than <paramref name="n"/> (n &gt; 1).</summary>
    public static long SplitPoint(long n) => 1L << BitOperations.Log2((ulong)(n - 1));

    /// <summary>PATH(index, D[0:size]) of RFC 6962 §2.1.1: the audit path, leaf side first.</summary>
    public static IReadOnlyList<byte[]> InclusionProof(long index, long size, NodeReader read)
    {
        if (index < 0 || index >= size) throw new ArgumentOutOfRangeException(nameof(index), $"leaf {index} is not in a tree of size {size}");
        var proof = new List<byte[]>();
        Path(index, 0, size, read, proof);
        return proof;
    }

    private static void Path(long m, long start, long end, NodeReader read, List<byte[]> proof)
    {
        var n = end - start;
        if (n == 1) return;
        var k = SplitPoint(n);
        if (m < k)
        {
            Path(m, start, start + k, read, proof);
            proof.Add(Range(start + k, end, read));
        }
        else
        {
            Path(m - k, start + k, end, read, proof);
            proof.Add(Range(start, start + k, read));
        }
    }

    /// <summary>PROOF(m, D[0:n]) of RFC 6962 §2.1.2: proves the tree of size <paramref name="m"/> is a prefix of the tree of size <paramref name="n"/>.</summary>
    public static IReadOnlyList<byte[]> ConsistencyProof(long m, long n, NodeReader read)
    {
        if (m <= 0 || m > n) throw new ArgumentOutOfRangeException(nameof(m), $"no consistency proof from size {m} to size {n}");
        var proof = new List<byte[]>();
        if (m < n) SubProof(m, 0, n, true, read, proof);
        return proof;
    }

    private static void SubProof(long m, long start, long end, bool complete, NodeReader read, List<byte[]> proof)
    {
        var n = end - start;
        if (m == n)
        {
            if (!complete) proof.Add(Range(start, end, read));
            return;
        }

        var k = SplitPoint(n);
        if (m <= k)
        {
            SubProof(m, start, start + k, complete, read, proof);
            proof.Add(Range(start + k, end, read));
        }
        else
        {
            SubProof(m - k, start + k, end, false, read, proof);
            proof.Add(Range(start, start + k, read));
        }
    }

    /// <summary>
    /// Verifies an inclusion proof (RFC 9162 §2.1.3.2) against a trusted root; false for any wrong
    /// shape, leaf, index, size or root.
    /// </summary>
    public static bool VerifyInclusion(long index, long size, byte[] leafHash, IReadOnlyList<byte[]> proof, byte[] root)
    {
        var computed = Merkle.RootFromInclusionProof(index, size, leafHash, proof);
        return computed is not null && root.Length == 32 && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(computed, root);
    }

    /// <summary>
    /// Verifies a consistency proof (RFC 9162 §2.1.4.2) between two trusted roots; false for any
    /// wrong shape or hash.
    /// </summary>
    public static bool VerifyConsistency(long size1, long size2, byte[] root1, byte[] root2, IReadOnlyList<byte[]> proof)
    {
        if (size1 <= 0 || size2 < size1 || root1.Length != 32 || root2.Length != 32 || proof.Any(p => p.Length != 32)) return false;
        if (size1 == size2) return proof.Count == 0 && root1.AsSpan().SequenceEqual(root2);
        if (proof.Count == 0) return false;

        var path = proof.ToList();
        if (BitOperations.IsPow2((ulong)size1)) path.Insert(0, root1);
        long fn = size1 - 1, sn = size2 - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }

        byte[] fr = path[0], sr = path[0];
        foreach (var c in path.Skip(1))
        {
            if (sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = Merkle.NodeHash(c, fr);
                sr = Merkle.NodeHash(c, sr);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                sr = Merkle.NodeHash(sr, c);
            }

            fn >>= 1;
            sn >>= 1;
        }

        return sn == 0 && fr.AsSpan().SequenceEqual(root1) && sr.AsSpan().SequenceEqual(root2);
    }

    /// <summary>
    /// Runs <paramref name="compute"/> once with placeholder hashes to learn which stored nodes it
    /// reads (the shape of every computation here depends only on sizes and indexes), so a store
    /// can fetch them all in one query before computing for real.
    /// </summary>
    public static IReadOnlyCollection<(int Level, long Index)> NodesRead(Action<NodeReader> compute)
    {
        var set = new HashSet<(int, long)>();
        var zero = new byte[32];
        compute((l, i) =>
        {
            set.Add((l, i));
            return zero;
        });
        return set;
    }
}
