using System.Text;
using Pipeline.Checkup;
using Pipeline.Checkup.Checksums;
using Pipeline.Checkup.Signatures.Git;
using Pipeline.Checkup.Signatures.OpenPgp;
using Pipeline.Checkup.Signatures.Sigstore;
using Pipeline.Checkup.Signatures.Ssh;

namespace Pipeline.Fuzz;

/// <summary>
/// Fuzz targets over the parsers that read supplier-controlled bytes. A target may reject its
/// input only with <see cref="CheckupException"/>; any other exception, a hang or a crash is a
/// finding.
/// </summary>
public static class Targets
{
    /// <summary>Each target returns true when the input was accepted, false when it was rejected cleanly.</summary>
    public static readonly IReadOnlyDictionary<string, Func<byte[], bool>> All = new Dictionary<string, Func<byte[], bool>>(StringComparer.Ordinal)
    {
        ["sigstore-bundle"] = b => Expect(() => SigstoreBundle.Parse(Text(b))),
        ["sigstore-trusted-root"] = b => Expect(() => TrustedRoot.Parse(Text(b))),
        ["sigstore-checkpoint"] = b => Expect(() => Checkpoint.Parse(Text(b))),
        ["openpgp-signature"] = b => Expect(() => OpenPgpSignature.ParseBinary(b)),
        ["openpgp-armored-signature"] = b => Expect(() => OpenPgpSignature.Parse(Text(b))),
        ["openpgp-keyring"] = b => Expect(() => OpenPgpPublicKeyRing.ParseAll(b)),
        ["ssh-signature"] = b => Expect(() => SshSignature.Parse(Text(b))),
        ["ssh-public-key"] = b => Expect(() => SshPublicKey.Parse(Text(b))),
        ["checksum-manifest"] = b => Expect(() => ChecksumManifest.Parse("SHA256SUMS", b)),
        ["git-tag-object"] = b => Expect(() => GitTagObject.Split(b)),
    };

    private static string Text(byte[] b) => Encoding.UTF8.GetString(b);

    private static bool Expect(Func<object> parse)
    {
        try
        {
            parse();
            return true;
        }
        catch (CheckupException)
        {
            // A clear rejection is the expected answer to malformed input.
            return false;
        }
    }
}
