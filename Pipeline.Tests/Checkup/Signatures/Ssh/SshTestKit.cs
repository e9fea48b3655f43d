using System.Buffers.Binary;
using System.Text;

namespace Pipeline.Tests.Checkup.Signatures.Ssh;

/// <summary>Test-side SSH wire helpers (independent of the production reader) to craft hostile signatures.</summary>
internal static class SshTestKit
{
    public static byte[] Dearmor(string armored) =>
        Convert.FromBase64String(string.Concat(armored.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("-----", StringComparison.Ordinal))));

    public static string Armor(byte[] blob)
    {
        var b64 = Convert.ToBase64String(blob);
        var sb = new StringBuilder("-----BEGIN SSH SIGNATURE-----\n");
        for (var i = 0; i < b64.Length; i += 70) sb.Append(b64.AsSpan(i, Math.Min(70, b64.Length - i))).Append('\n');
        return sb.Append("-----END SSH SIGNATURE-----\n").ToString();
    }

    /// <summary>Splits an SSHSIG blob into [publickey, namespace, reserved, hash_algorithm, signature].</summary>
    public static List<byte[]> Fields(byte[] blob)
    {
        var list = new List<byte[]>();
        var pos = 10;
        while (pos < blob.Length)
        {
            var len = (int)BinaryPrimitives.ReadUInt32BigEndian(blob.AsSpan(pos));
            list.Add(blob.AsSpan(pos + 4, len).ToArray());
            pos += 4 + len;
        }
        return list;
    }

    public static byte[] Blob(IEnumerable<byte[]> fields, uint version = 1, string magic = "SSHSIG")
    {
        var ms = new MemoryStream();
        ms.Write(Encoding.ASCII.GetBytes(magic));
        WriteUInt32(ms, version);
        foreach (var f in fields) WriteString(ms, f);
        return ms.ToArray();
    }

    public static byte[] Str(params byte[][] parts)
    {
        var ms = new MemoryStream();
        foreach (var p in parts) WriteString(ms, p);
        return ms.ToArray();
    }

    public static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);

    public static void WriteUInt32(Stream s, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(b, v);
        s.Write(b);
    }

    public static void WriteString(Stream s, byte[] v)
    {
        WriteUInt32(s, (uint)v.Length);
        s.Write(v);
    }
}
