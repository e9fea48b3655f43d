using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Engine.Ledger;

namespace Pipeline.Tests.Engine.Ledger;

/// <summary>
/// The stored-node Merkle functions against pinned RFC 6962 vectors (the certificate-transparency
/// reference test data) and against a naive reference that rehashes every leaf.
/// </summary>
public class MerkleProofsTests
{
    // The eight leaves of the RFC 6962 reference tests.
    private static readonly byte[][] Leaves =
    [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
    ];

    private static readonly string[] Roots =
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// <summary>A log built the way the store builds it: nodes stored as leaves are appended.</summary>
    private sealed class StoredTree
    {
        public readonly Dictionary<(int, long), byte[]> Nodes = new();
        public readonly List<byte[]> LeafData = [];

        public void Append(byte[] data)
        {
            var index = LeafData.Count;
            LeafData.Add(data);
            foreach (var (l, i, h) in MerkleProofs.NodesCompletedBy(index, Merkle.LeafHash(data), Read)) Nodes[(l, i)] = h;
        }

        public byte[] Read(int level, long index) => Nodes[(level, index)];

        public static StoredTree Of(IEnumerable<byte[]> leaves)
        {
            var t = new StoredTree();
            foreach (var l in leaves) t.Append(l);
            return t;
        }
    }

    // --- naive reference: RFC 6962 §2.1 written out over all leaves ---
    private static byte[] NaiveRoot(IReadOnlyList<byte[]> d)
    {
        if (d.Count == 1) return Merkle.LeafHash(d[0]);
        var k = 1;
        while (k * 2 < d.Count) k *= 2;
        return Merkle.NodeHash(NaiveRoot(d.Take(k).ToList()), NaiveRoot(d.Skip(k).ToList()));
    }

    private static List<byte[]> NaivePath(int m, IReadOnlyList<byte[]> d)
    {
        if (d.Count == 1) return [];
        var k = 1;
        while (k * 2 < d.Count) k *= 2;
        return m < k
            ? [.. NaivePath(m, d.Take(k).ToList()), NaiveRoot(d.Skip(k).ToList())]
            : [.. NaivePath(m - k, d.Skip(k).ToList()), NaiveRoot(d.Take(k).ToList())];
    }

    private static List<byte[]> NaiveSubProof(int m, IReadOnlyList<byte[]> d, bool b)
    {
        if (m == d.Count) return b ? [] : [NaiveRoot(d)];
        var k = 1;
        while (k * 2 < d.Count) k *= 2;
        return m <= k
            ? [.. NaiveSubProof(m, d.Take(k).ToList(), b), NaiveRoot(d.Skip(k).ToList())]
            : [.. NaiveSubProof(m - k, d.Skip(k).ToList(), false), NaiveRoot(d.Take(k).ToList())];
    }

    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);
    private static byte[] FromHex(string s) => Convert.FromHexString(s);

    [Test]
    public void Roots_of_the_reference_trees_match_the_pinned_RFC_6962_vectors()
    {
        var t = new StoredTree();
        for (var n = 1; n <= 8; n++)
        {
            t.Append(Leaves[n - 1]);
            Assert.That(Hex(MerkleProofs.Root(n, t.Read)), Is.EqualTo(Roots[n - 1]), $"root of size {n}");
        }

        Assert.That(Hex(MerkleProofs.Root(0, t.Read)), Is.EqualTo("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty tree = SHA-256 of nothing");
    }

    [TestCase(0, 8, new[] { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" })]
    [TestCase(5, 8, new[] { "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" })]
    [TestCase(2, 3, new[] { "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125" })]
    [TestCase(1, 5, new[] { "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" })]
    public void Inclusion_proofs_match_the_pinned_vectors_and_verify(int index, int size, string[] expected)
    {
        var t = StoredTree.Of(Leaves.Take(size));
        var proof = MerkleProofs.InclusionProof(index, size, t.Read);
        Assert.That(proof.Select(Hex), Is.EqualTo(expected));
        Assert.That(MerkleProofs.VerifyInclusion(index, size, Merkle.LeafHash(Leaves[index]), proof, FromHex(Roots[size - 1])), Is.True);
    }

    [TestCase(1, 1, new string[0])]
    [TestCase(1, 8, new[] { "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4" })]
    [TestCase(6, 8, new[] { "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7" })]
    [TestCase(2, 5, new[] { "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b" })]
    public void Consistency_proofs_match_the_pinned_vectors_and_verify(int m, int n, string[] expected)
    {
        var t = StoredTree.Of(Leaves.Take(n));
        var proof = MerkleProofs.ConsistencyProof(m, n, t.Read);
        Assert.That(proof.Select(Hex), Is.EqualTo(expected));
        Assert.That(MerkleProofs.VerifyConsistency(m, n, FromHex(Roots[m - 1]), FromHex(Roots[n - 1]), proof), Is.True);
    }

    [Test]
    public void Every_root_and_proof_up_to_70_leaves_equals_the_naive_reference_and_verifies()
    {
        var data = Enumerable.Range(0, 70).Select(i => BitConverter.GetBytes(i * 7919)).ToList();
        var t = StoredTree.Of(data);
        for (var n = 1; n <= data.Count; n++)
        {
            var prefix = data.Take(n).ToList();
            var root = MerkleProofs.Root(n, t.Read);
            Assert.That(Hex(root), Is.EqualTo(Hex(NaiveRoot(prefix))), $"root {n}");
            for (var i = 0; i < n; i++)
            {
                var proof = MerkleProofs.InclusionProof(i, n, t.Read);
                Assert.That(proof.Select(Hex), Is.EqualTo(NaivePath(i, prefix).Select(Hex)), $"path {i} of {n}");
                Assert.That(MerkleProofs.VerifyInclusion(i, n, Merkle.LeafHash(data[i]), proof, root), Is.True, $"inclusion {i} of {n}");
            }

            for (var m = 1; m <= n; m++)
            {
                var proof = MerkleProofs.ConsistencyProof(m, n, t.Read);
                Assert.That(proof.Select(Hex), Is.EqualTo((m == n ? [] : NaiveSubProof(m, prefix, true)).Select(Hex)), $"consistency {m}->{n}");
                Assert.That(MerkleProofs.VerifyConsistency(m, n, NaiveRoot(data.Take(m).ToList()), root, proof), Is.True, $"consistency {m}->{n}");
            }
        }
    }

    [Test]
    public void A_proof_reads_only_logarithmically_many_stored_nodes()
    {
        var n = 1000;
        var needed = MerkleProofs.NodesRead(r => MerkleProofs.InclusionProof(537, n, r));
        Assert.That(needed, Has.Count.LessThanOrEqualTo(2 * 10), "at most ~2 log2(n) stored nodes, never all leaves");
        var consistency = MerkleProofs.NodesRead(r => MerkleProofs.ConsistencyProof(333, n, r));
        Assert.That(consistency, Has.Count.LessThanOrEqualTo(2 * 10));
    }

    private static IEnumerable<TestCaseData> InclusionTampering()
    {
        var t = StoredTree.Of(Leaves);
        var proof = MerkleProofs.InclusionProof(5, 8, t.Read).ToList();
        var root = FromHex(Roots[7]);
        var leaf = Merkle.LeafHash(Leaves[5]);
        byte[] Flip(byte[] b, int bit) { var c = (byte[])b.Clone(); c[bit / 8] ^= (byte)(1 << (bit % 8)); return c; }
        yield return new TestCaseData(5L, 8L, Flip(leaf, 0), proof, root).SetName("inclusion: leaf hash bit flip");
        yield return new TestCaseData(5L, 8L, leaf, proof.Select((p, i) => i == 1 ? Flip(p, 100) : p).ToList(), root).SetName("inclusion: proof node bit flip");
        yield return new TestCaseData(5L, 8L, leaf, proof, Flip(root, 255)).SetName("inclusion: root bit flip");
        yield return new TestCaseData(5L, 8L, leaf, proof.Take(2).ToList(), root).SetName("inclusion: truncated proof");
        yield return new TestCaseData(5L, 8L, leaf, proof.Append(root).ToList(), root).SetName("inclusion: proof with an extra node");
        yield return new TestCaseData(5L, 8L, leaf, proof, FromHex(Roots[6])).SetName("inclusion: swapped root (size 7)");
        yield return new TestCaseData(5L, 8L, Merkle.LeafHash(Leaves[4]), proof, root).SetName("inclusion: wrong leaf");
        yield return new TestCaseData(4L, 8L, leaf, proof, root).SetName("inclusion: wrong index");
        // (Size 7 has the same proof shape for leaf 5 as size 8, so the size is bound to the root
        // only by the signed checkpoint; size 6 has another shape.)
        yield return new TestCaseData(5L, 6L, leaf, proof, root).SetName("inclusion: wrong tree size");
        yield return new TestCaseData(8L, 8L, leaf, proof, root).SetName("inclusion: index beyond the tree");
        yield return new TestCaseData(5L, 8L, leaf, proof.Select((p, i) => i == 0 ? p[..31] : p).ToList(), root).SetName("inclusion: short node");
    }

    [TestCaseSource(nameof(InclusionTampering))]
    public void A_tampered_inclusion_proof_is_rejected(long index, long size, byte[] leaf, List<byte[]> proof, byte[] root) =>
        Assert.That(MerkleProofs.VerifyInclusion(index, size, leaf, proof, root), Is.False);

    private static IEnumerable<TestCaseData> ConsistencyTampering()
    {
        var t = StoredTree.Of(Leaves);
        var proof = MerkleProofs.ConsistencyProof(6, 8, t.Read).ToList();
        byte[] r6 = FromHex(Roots[5]), r8 = FromHex(Roots[7]);
        byte[] Flip(byte[] b) { var c = (byte[])b.Clone(); c[17] ^= 0x40; return c; }
        yield return new TestCaseData(6L, 8L, r6, r8, proof.Select((p, i) => i == 2 ? Flip(p) : p).ToList()).SetName("consistency: proof node bit flip");
        yield return new TestCaseData(6L, 8L, Flip(r6), r8, proof).SetName("consistency: old root bit flip");
        yield return new TestCaseData(6L, 8L, r6, Flip(r8), proof).SetName("consistency: new root bit flip");
        yield return new TestCaseData(6L, 8L, r8, r6, proof).SetName("consistency: swapped roots");
        yield return new TestCaseData(6L, 8L, r6, r8, proof.Take(2).ToList()).SetName("consistency: truncated proof");
        yield return new TestCaseData(6L, 8L, r6, r8, new List<byte[]>()).SetName("consistency: empty proof");
        yield return new TestCaseData(6L, 8L, r6, r8, proof.Append(r8).ToList()).SetName("consistency: extra node");
        yield return new TestCaseData(5L, 8L, r6, r8, proof).SetName("consistency: wrong old size");
        yield return new TestCaseData(8L, 6L, r8, r6, proof).SetName("consistency: sizes reversed");
        yield return new TestCaseData(6L, 8L, FromHex(Roots[4]), r8, proof).SetName("consistency: a different log's prefix root");
    }

    [TestCaseSource(nameof(ConsistencyTampering))]
    public void A_tampered_consistency_proof_is_rejected(long m, long n, byte[] root1, byte[] root2, List<byte[]> proof) =>
        Assert.That(MerkleProofs.VerifyConsistency(m, n, root1, root2, proof), Is.False);

    [Test]
    public void A_changed_leaf_changes_the_root_and_breaks_every_old_proof()
    {
        var good = StoredTree.Of(Leaves);
        var bad = StoredTree.Of(Leaves.Select((l, i) => i == 3 ? new byte[] { 0x20, 0x22 } : l));
        Assert.That(Hex(MerkleProofs.Root(8, bad.Read)), Is.Not.EqualTo(Roots[7]));
        var proof = MerkleProofs.ConsistencyProof(4, 8, bad.Read);
        Assert.That(MerkleProofs.VerifyConsistency(4, 8, FromHex(Roots[3]), MerkleProofs.Root(8, bad.Read), proof), Is.False,
            "a rewritten history is not consistent with an old checkpoint");
        Assert.That(MerkleProofs.Root(8, good.Read), Is.EqualTo(FromHex(Roots[7])));
    }
}
