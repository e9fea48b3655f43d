using System.Text;

namespace Pipeline.Checkup.Signatures.OpenPgp;

/// <summary>One packet found by <see cref="OpenPgpPackets.Scan"/>: its tag and where its header and body lie.</summary>
internal readonly record struct PacketSpan(int Tag, int Start, int BodyStart, int BodyLength)
{
    public int End => BodyStart + BodyLength;
}

/// <summary>
/// Strict, bounded ASCII-armour decoding and packet framing, done before any bytes reach BouncyCastle, so that
/// truncated packets, lying length headers, partial lengths and unexpected packet kinds are rejected up front.
/// </summary>
internal static class OpenPgpPackets
{
    /// <summary>Decodes every armoured block of the given kind ("PGP SIGNATURE", "PGP PUBLIC KEY BLOCK").</summary>
    /// <param name="allowSurroundingText">false: only whitespace may surround the single block.</param>
    public static List<byte[]> Dearmor(string text, string kind, bool allowSurroundingText)
    {
        var begin = $"-----BEGIN {kind}-----";
        var end = $"-----END {kind}-----";
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var blocks = new List<byte[]>();
        var i = 0;
        while (i < lines.Length)
        {
            var line = lines[i].TrimEnd(' ', '\t', '\r');
            if (line != begin)
            {
                if (line.StartsWith("-----BEGIN ", StringComparison.Ordinal))
                    throw Malformed($"found '{Truncate(line)}' where '{begin}' was expected");
                if (!allowSurroundingText && line.Trim().Length > 0)
                    throw Malformed($"unexpected text outside the '{begin}' block");
                i++;
                continue;
            }
            i++;
            // Armour headers: "Key: Value" lines up to an empty line.
            while (true)
            {
                if (i >= lines.Length) throw Malformed("the armour ends inside its headers");
                var h = lines[i].TrimEnd(' ', '\t', '\r');
                i++;
                if (h.Length == 0) break;
                var colon = h.IndexOf(": ", StringComparison.Ordinal);
                if (colon <= 0 || h[..colon].Any(c => !char.IsAsciiLetterOrDigit(c) && c != '-'))
                    throw Malformed("an armour header line is not 'Key: Value' (missing blank line after the BEGIN line?)");
            }
            var b64 = new StringBuilder();
            string? crc = null;
            var closed = false;
            while (i < lines.Length)
            {
                var l = lines[i].TrimEnd(' ', '\t', '\r');
                i++;
                if (l == end) { closed = true; break; }
                if (crc is not null) throw Malformed("text after the armour checksum line");
                if (l.StartsWith('=') && l.Length == 5) { crc = l[1..]; continue; }
                if (l.Length == 0) continue;
                if (l.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '+' or '/' or '=')))
                    throw Malformed("the armour body contains characters that are not base64");
                b64.Append(l);
            }
            if (!closed) throw Malformed($"the armour has no '{end}' line");
            byte[] data;
            try
            {
                data = Convert.FromBase64String(b64.ToString());
            }
            catch (FormatException)
            {
                throw Malformed("the armour body is not valid base64");
            }
            if (data.Length == 0) throw Malformed("the armoured block is empty");
            if (crc is not null)
            {
                byte[] crcBytes;
                try { crcBytes = Convert.FromBase64String(crc); }
                catch (FormatException) { throw Malformed("the armour checksum is not valid base64"); }
                if (crcBytes.Length != 3 || ((crcBytes[0] << 16) | (crcBytes[1] << 8) | crcBytes[2]) != Crc24(data))
                    throw Malformed("the armour checksum (CRC-24) does not match its content: the block is corrupted");
            }
            blocks.Add(data);
        }
        if (blocks.Count == 0) throw Malformed($"no '{begin}' block found");
        return blocks;
    }

    /// <summary>
    /// Splits <paramref name="data"/> into packets. Rejects truncated packets, length headers that run past the end,
    /// partial and indeterminate lengths (only data packets may use them, and we accept none), and reserved tags.
    /// </summary>
    public static List<PacketSpan> Scan(ReadOnlySpan<byte> data, int maxPackets)
    {
        var packets = new List<PacketSpan>();
        var pos = 0;
        while (pos < data.Length)
        {
            if (packets.Count >= maxPackets) throw Malformed($"more than {maxPackets} packets");
            var start = pos;
            var ctb = data[pos++];
            if ((ctb & 0x80) == 0) throw Malformed($"byte {start} is not a packet header (0x{ctb:x2})");
            int tag;
            long len;
            if ((ctb & 0x40) != 0)
            {
                tag = ctb & 0x3f;
                if (pos >= data.Length) throw Truncated(start);
                var b0 = data[pos++];
                if (b0 < 192) len = b0;
                else if (b0 < 224)
                {
                    if (pos >= data.Length) throw Truncated(start);
                    len = ((b0 - 192) << 8) + data[pos++] + 192;
                }
                else if (b0 == 255)
                {
                    if (data.Length - pos < 4) throw Truncated(start);
                    len = ((long)data[pos] << 24) | ((long)data[pos + 1] << 16) | ((long)data[pos + 2] << 8) | data[pos + 3];
                    pos += 4;
                }
                else throw Malformed($"packet at byte {start} ({Describe(tag)}) uses a partial body length, which only data packets may use");
            }
            else
            {
                tag = (ctb >> 2) & 0x0f;
                var lenType = ctb & 0x03;
                if (lenType == 3) throw Malformed($"packet at byte {start} ({Describe(tag)}) has an indeterminate length");
                var n = 1 << lenType;
                if (data.Length - pos < n) throw Truncated(start);
                len = 0;
                for (var k = 0; k < n; k++) len = (len << 8) | data[pos + k];
                pos += n;
            }
            if (tag == 0) throw Malformed($"packet at byte {start} has the reserved tag 0");
            if (len > data.Length - pos)
                throw Malformed($"packet at byte {start} ({Describe(tag)}) claims {len} bytes but only {data.Length - pos} remain: truncated or forged length");
            packets.Add(new PacketSpan(tag, start, pos, (int)len));
            pos += (int)len;
        }
        if (packets.Count == 0) throw Malformed("no packet found");
        return packets;
    }

    /// <summary>Describes well-known packet tags for error messages.</summary>
    public static string Describe(int tag) => tag switch
    {
        1 => "public-key encrypted session key",
        2 => "signature",
        3 => "symmetric-key encrypted session key",
        4 => "one-pass signature",
        5 => "secret key",
        6 => "public key",
        7 => "secret subkey",
        8 => "compressed data",
        9 => "symmetrically encrypted data",
        10 => "marker",
        11 => "literal data",
        12 => "trust",
        13 => "user id",
        14 => "public subkey",
        17 => "user attribute",
        18 => "encrypted and integrity protected data",
        20 => "AEAD encrypted data",
        21 => "padding",
        _ => $"tag {tag}",
    };

    private static int Crc24(byte[] data)
    {
        var crc = 0xB704CE;
        foreach (var b in data)
        {
            crc ^= b << 16;
            for (var k = 0; k < 8; k++)
            {
                crc <<= 1;
                if ((crc & 0x1000000) != 0) crc ^= 0x1864CFB;
            }
        }
        return crc & 0xFFFFFF;
    }

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "...";

    private static CheckupException Truncated(int start) =>
        Malformed($"the packet header at byte {start} is truncated");

    internal static CheckupException Malformed(string why) =>
        new(OpenPgpErrors.Malformed, $"Malformed OpenPGP data: {why}.");
}
