using System.Buffers.Binary;
using System.Text;

namespace Pipeline.Checkup.Signatures.Ssh;

/// <summary>
/// Bounds-checked reader of RFC 4251 wire types. Every length is checked against the bytes that remain
/// before anything is sliced or allocated; any violation is a <see cref="CheckupException"/> with the given code.
/// </summary>
internal ref struct SshReader(ReadOnlySpan<byte> data, string errorCode, string what)
{
    private ReadOnlySpan<byte> _rest = data;

    public readonly bool IsEmpty => _rest.IsEmpty;

    public uint ReadUInt32()
    {
        if (_rest.Length < 4) throw Fail("truncated (uint32 expected)");
        var v = BinaryPrimitives.ReadUInt32BigEndian(_rest);
        _rest = _rest[4..];
        return v;
    }

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || _rest.Length < count) throw Fail("truncated");
        var v = _rest[..count];
        _rest = _rest[count..];
        return v;
    }

    public ReadOnlySpan<byte> ReadString()
    {
        var len = ReadUInt32();
        if (len > (uint)_rest.Length) throw Fail($"a length field ({len}) exceeds the {_rest.Length} bytes that remain");
        return ReadBytes((int)len);
    }

    /// <summary>A string that must be printable ASCII/UTF-8 text without control characters.</summary>
    public string ReadText()
    {
        var bytes = ReadString();
        string s;
        try
        {
            s = new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Fail("a text field is not valid UTF-8");
        }
        if (s.Any(char.IsControl)) throw Fail("a text field contains control characters");
        return s;
    }

    /// <summary>An mpint that must be non-negative; returns its magnitude without leading zero bytes.</summary>
    public ReadOnlySpan<byte> ReadPositiveMpint()
    {
        var v = ReadString();
        if (v.Length > 0 && (v[0] & 0x80) != 0) throw Fail("a negative mpint");
        if (v.Length > 1 && v[0] == 0 && (v[1] & 0x80) == 0) throw Fail("an mpint with a superfluous leading zero");
        while (v.Length > 0 && v[0] == 0) v = v[1..];
        return v;
    }

    public readonly void EnsureEnd()
    {
        if (!_rest.IsEmpty) throw Fail($"{_rest.Length} unexpected trailing bytes");
    }

    private readonly CheckupException Fail(string reason) => new(errorCode, $"Malformed {what}: {reason}.");
}
