using System.Text;
using Pipeline.Fuzz;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Fuzz;

/// <summary>
/// A short fuzz run inside the suite: every fuzz target gets thousands of seeded mutations of real
/// inputs (bit flips, truncation, insertion, duplication, splicing). A target may only ever reject
/// with CheckupException; any other exception fails the test with the input that caused it.
/// The long, coverage-guided campaign runs under AFL++ (fuzz/README.md).
/// </summary>
public class FuzzSmokeTests
{
    private const int Iterations = 3000;

    // Real seeds (public material only): an OpenPGP key and detached signature made with gpg, an
    // SSH signature made with ssh-keygen -Y sign, both over the bytes "payload\n".
    private const string PgpSignature = """
-----BEGIN PGP SIGNATURE-----

iHUEABYIAB0WIQSpYtxkIbqEMYdBNRvqGAkhP7+01QUCawPXxQAKCRDqGAkhP7+0
1XoxAP9pDFsN0kgYCNAbub3IedyUqm2cAmStoZEGCoARogn5CgEA2D9DYPEL4LCb
mJ7D73iSzcghNUEQ+wD3McC8WQ6PAgA=
=gZHB
-----END PGP SIGNATURE-----
""";

    private const string PgpKey = """
-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEawPXxRYJKwYBBAHaRw8BAQdA4ruVkiDKy3M2tyERLGNbTe42mKTjiShnLLaY
7SaQs3O0IEZ1enogU2VlZCA8ZnV6ekBleGFtcGxlLmludmFsaWQ+iJAEExYIADgW
IQSpYtxkIbqEMYdBNRvqGAkhP7+01QUCawPXxQIbAwULCQgHAgYVCgkICwIEFgID
AQIeAQIXgAAKCRDqGAkhP7+01SSIAQCFxtXQXGF02yJoB4WuIuljuZe2QrxJJ+Io
WzKcNJiLPgEAxotOvdypIzxhp5Pw/LxGrTQdFuH/Tf3gUW6rUyT4ngc=
=0APk
-----END PGP PUBLIC KEY BLOCK-----
""";

    private const string SshSig = """
-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgz2kAY6iVqd5UOjG0nagutCbOpX
1zEawToCOA9LMQ9mwAAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
AAAAQDOVz9Ny192DP2R2S/+r+qxFhaISs3CAhzxORT+Mk0zq3eg+KN1pGlLXXuE5L/FO1v
3DJnyAS3KYlib6M14oqA4=
-----END SSH SIGNATURE-----
""";

    private const string SshKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM9pAGOolaneVDoxtJ2oLrQmzqV9cxGsE6AjgPSzEPZs root@vm";

    private static IEnumerable<string> TargetNames() => Targets.All.Keys;

    [TestCaseSource(nameof(TargetNames))]
    public void Mutated_real_inputs_are_rejected_cleanly_or_accepted(string target)
    {
        var seeds = Seeds(target);
        Assert.That(seeds, Is.Not.Empty);
        var run = Targets.All[target];
        foreach (var seed in seeds) Assert.That(run(seed), Is.True, "every seed is a valid input, so mutations start from the parser's deep paths");
        int accepted = 0, rejected = 0;

        var random = new Random(20261123 ^ target.GetHashCode(StringComparison.Ordinal) & 0x7fffffff);
        for (var i = 0; i < Iterations; i++)
        {
            var input = Mutate(seeds[random.Next(seeds.Count)], seeds[random.Next(seeds.Count)], random);
            try
            {
                if (run(input)) accepted++;
                else rejected++;
            }
            catch (Exception e)
            {
                Assert.Fail($"{target}: {e.GetType().Name}: {e.Message}\ninput (base64): {Convert.ToBase64String(input)}");
            }
        }

        Assert.That(rejected, Is.GreaterThan(Iterations / 10), "the mutations must actually produce malformed input");
        TestContext.Out.WriteLine($"{target}: {accepted} accepted, {rejected} rejected");
    }

    private static byte[] Mutate(byte[] a, byte[] b, Random r)
    {
        var data = new List<byte>(a);
        var rounds = 1 + r.Next(4);
        for (var k = 0; k < rounds; k++)
        {
            switch (r.Next(6))
            {
                case 0 when data.Count > 0: // flip one bit
                    data[r.Next(data.Count)] ^= (byte)(1 << r.Next(8));
                    break;
                case 1 when data.Count > 0: // delete a run
                    var at = r.Next(data.Count);
                    data.RemoveRange(at, Math.Min(1 + r.Next(16), data.Count - at));
                    break;
                case 2: // insert a random byte
                    data.Insert(r.Next(data.Count + 1), (byte)r.Next(256));
                    break;
                case 3: // truncate
                    data = data.Take(r.Next(data.Count + 1)).ToList();
                    break;
                case 4 when data.Count > 0: // duplicate a run somewhere else
                    var start = r.Next(data.Count);
                    var len = Math.Min(1 + r.Next(64), data.Count - start);
                    data.InsertRange(r.Next(data.Count + 1), data.GetRange(start, len));
                    break;
                default: // splice with another seed
                    data = data.Take(r.Next(data.Count + 1)).Concat(b.Skip(r.Next(b.Length + 1))).ToList();
                    break;
            }
        }

        return data.ToArray();
    }

    private static List<byte[]> Seeds(string target)
    {
        static byte[] U(string s) => Encoding.UTF8.GetBytes(s);
        var shared = TestServices.SharedDir;
        var bundles = shared is null
            ? new List<byte[]>()
            : Directory.EnumerateDirectories(Path.Combine(shared, "vectors", "sigstore-conformance", "bundle-verify"))
                .Where(d => !d.EndsWith("_fail", StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).Select(d => File.ReadAllBytes(Path.Combine(d, "bundle.sigstore.json"))).ToList();
        return target switch
        {
            "sigstore-bundle" => bundles.Count > 0 ? bundles : [U("""{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}""")],
            "sigstore-trusted-root" => shared is null
                ? [U("""{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[]}""")]
                : [File.ReadAllBytes(Path.Combine(shared, "vectors", "sigstore-conformance", "production_trusted_root.json"))],
            "sigstore-checkpoint" => [U("rekor.sigstore.dev - 1193050959916656506\n42\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\n\u2014 rekor.sigstore.dev wNI9ajBEAiB+8W0mOv1b6Mi4JGmiOTbDBU1lvGZ5F8OG7eC5t1Hd3AIgXH6qgkdMTzKhZaqzKFd2z4a4R6QfnqGD3E8gUD7B4RE=\n")],
            "openpgp-signature" => [Dearmor(PgpSignature)],
            "openpgp-armored-signature" => [U(PgpSignature)],
            "openpgp-keyring" => [U(PgpKey), Dearmor(PgpKey)],
            "ssh-signature" => [U(SshSig)],
            "ssh-public-key" => [U(SshKey)],
            "checksum-manifest" => [U("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  bin/app\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 *docs/a b.md\n\\e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  x\\ny\n")],
            "git-tag-object" => [U("object 0123456789abcdef0123456789abcdef01234567\ntype commit\ntag v1.0.0\ntagger A <a@b> 1700000000 +0100\n\nRelease\n" + SshSig), U("object 0123456789abcdef0123456789abcdef01234567\ntype commit\ntag v1\ntagger A <a@b> 1700000000 +0000\n\nmsg\n" + PgpSignature)],
            _ => throw new ArgumentException("no seeds for " + target),
        };
    }

    private static byte[] Dearmor(string armored)
    {
        var lines = armored.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var start = lines.FindIndex(l => l.Length == 0) + 1;
        var body = lines.Skip(start).TakeWhile(l => !l.StartsWith('=') && !l.StartsWith("-----", StringComparison.Ordinal));
        return Convert.FromBase64String(string.Concat(body));
    }
}
