using System.Text;
using Pipeline.Checkup.Signatures.Sigstore;

namespace Pipeline.Tests.Checkup.Sigstore;

[TestFixture]
public class MerkleTests
{
    // Reference RFC 6962 MTH and PATH, straight from the definitions (recursive, k = largest power of 2 < n).
    private static byte[] Mth(IReadOnlyList<byte[]> leaves)
    {
        if (leaves.Count == 1) return Merkle.LeafHash(leaves[0]);
        var k = 1;
        while (k * 2 < leaves.Count) k *= 2;
        return Merkle.NodeHash(Mth(leaves.Take(k).ToList()), Mth(leaves.Skip(k).ToList()));
    }

    private static List<byte[]> Path(int m, IReadOnlyList<byte[]> leaves)
    {
        if (leaves.Count == 1) return [];
        var k = 1;
        while (k * 2 < leaves.Count) k *= 2;
        if (m < k) return [.. Path(m, leaves.Take(k).ToList()), Mth(leaves.Skip(k).ToList())];
        return [.. Path(m - k, leaves.Skip(k).ToList()), Mth(leaves.Take(k).ToList())];
    }

    [Test]
    public void RecomputesRootForEveryLeafOfTreesUpTo20()
    {
        for (var n = 1; n <= 20; n++)
        {
            var leaves = Enumerable.Range(0, n).Select(i => Encoding.ASCII.GetBytes($"leaf-{i}")).ToList();
            var root = Mth(leaves);
            for (var m = 0; m < n; m++)
            {
                var got = Merkle.RootFromInclusionProof(m, n, Merkle.LeafHash(leaves[m]), Path(m, leaves));
                Assert.That(got, Is.EqualTo(root), $"n={n} m={m}");
            }
        }
    }

    [Test]
    public void WrongIndexOrTamperedProofDoesNotGiveTheRoot()
    {
        var leaves = Enumerable.Range(0, 7).Select(i => Encoding.ASCII.GetBytes($"leaf-{i}")).ToList();
        var root = Mth(leaves);
        var proof = Path(3, leaves);
        Assert.That(Merkle.RootFromInclusionProof(2, 7, Merkle.LeafHash(leaves[3]), proof), Is.Not.EqualTo(root));
        var tampered = proof.Select(p => (byte[])p.Clone()).ToList();
        tampered[0][0] ^= 1;
        Assert.That(Merkle.RootFromInclusionProof(3, 7, Merkle.LeafHash(leaves[3]), tampered), Is.Not.EqualTo(root));
    }

    [Test]
    public void MalformedShapesReturnNull()
    {
        var leaf = Merkle.LeafHash([1]);
        var h = new byte[32];
        Assert.That(Merkle.RootFromInclusionProof(5, 5, leaf, []), Is.Null, "index == size");
        Assert.That(Merkle.RootFromInclusionProof(-1, 5, leaf, [h]), Is.Null, "negative index");
        Assert.That(Merkle.RootFromInclusionProof(0, 4, leaf, [h]), Is.Null, "proof too short");
        Assert.That(Merkle.RootFromInclusionProof(0, 2, leaf, [h, h]), Is.Null, "proof too long");
        Assert.That(Merkle.RootFromInclusionProof(0, 2, leaf, [new byte[31]]), Is.Null, "short hash");
    }
}
