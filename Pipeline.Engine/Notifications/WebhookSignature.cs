using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Engine.Notifications;

/// <summary>
/// The webhook signature: <c>X-Pipeline-Signature: sha256=HEX</c>, HEX being the HMAC-SHA256 with
/// the shared secret over <c>TIMESTAMP + "." + BODY</c>, TIMESTAMP the value of
/// <c>X-Pipeline-Timestamp</c> (Unix seconds). Binding the timestamp into the MAC lets receivers
/// refuse replays older than a few minutes; receivers compare in constant time.
/// </summary>
public static class WebhookSignature
{
    public const string SignatureHeader = "X-Pipeline-Signature";
    public const string TimestampHeader = "X-Pipeline-Timestamp";
    public const string EventHeader = "X-Pipeline-Event";
    public const string IdHeader = "X-Pipeline-Event-Id";

    public static string Sign(byte[] secret, string timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.ASCII.GetBytes(timestamp + ".");
        var data = new byte[prefix.Length + body.Length];
        prefix.CopyTo(data, 0);
        body.CopyTo(data.AsSpan(prefix.Length));
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(secret, data));
    }

    /// <summary>What a receiver does: recompute and compare in constant time, and refuse stale timestamps.</summary>
    public static bool Verify(byte[] secret, string? timestamp, string? signature, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (timestamp is null || signature is null || !long.TryParse(timestamp, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)) return false;
        if ((now - DateTimeOffset.FromUnixTimeSeconds(seconds)).Duration() > tolerance) return false;
        var expected = Encoding.ASCII.GetBytes(Sign(secret, timestamp, body));
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(signature));
    }

    /// <summary>The secret as stored in <c>secretFile</c> (surrounding whitespace removed), as UTF-8 bytes.</summary>
    public static byte[] ReadSecret(string file) => Encoding.UTF8.GetBytes(File.ReadAllText(file).Trim());
}
