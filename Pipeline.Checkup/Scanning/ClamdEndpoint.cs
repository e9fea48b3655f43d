using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Pipeline.Checkup.Scanning;

/// <summary>Where clamd listens: a TCP host and port, or a Unix domain socket path.</summary>
public sealed record ClamdEndpoint
{
    private ClamdEndpoint(string? host, int port, string? socketPath)
    {
        Host = host;
        Port = port;
        SocketPath = socketPath;
    }

    /// <summary>The TCP host, or null for a Unix socket.</summary>
    public string? Host { get; }

    /// <summary>The TCP port (0 for a Unix socket).</summary>
    public int Port { get; }

    /// <summary>The Unix socket path, or null for TCP.</summary>
    public string? SocketPath { get; }

    public bool IsUnixSocket => SocketPath is not null;

    /// <summary>Parses <c>tcp://host:port</c>, <c>unix:///path/clamd.sock</c> or <c>host:port</c>.</summary>
    public static ClamdEndpoint Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var v = value.Trim();
        if (v.StartsWith("unix://", StringComparison.OrdinalIgnoreCase))
        {
            var path = v["unix://".Length..];
            if (path.Length < 2 || path[0] != '/' || path.Contains('\0'))
                throw Bad(value, "a Unix socket needs an absolute path: unix:///run/clamav/clamd.ctl");
            return new ClamdEndpoint(null, 0, path);
        }
        if (v.StartsWith("tcp://", StringComparison.OrdinalIgnoreCase)) v = v["tcp://".Length..].TrimEnd('/');
        else if (v.Contains("://", StringComparison.Ordinal)) throw Bad(value, "only tcp:// and unix:// are supported");

        string host;
        string portText;
        if (v.StartsWith('['))
        {
            var close = v.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= v.Length || v[close + 1] != ':') throw Bad(value, "expected [ipv6]:port");
            host = v[1..close];
            portText = v[(close + 2)..];
        }
        else
        {
            var colon = v.LastIndexOf(':');
            if (colon <= 0 || v.IndexOf(':') != colon) throw Bad(value, "expected host:port");
            host = v[..colon];
            portText = v[(colon + 1)..];
        }
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw Bad(value, "the port must be a number from 1 to 65535");
        if (host.Length == 0 || host.Any(c => char.IsWhiteSpace(c) || c is '/' or '@' or '?' or '#'))
            throw Bad(value, "the host is empty or has invalid characters");
        return new ClamdEndpoint(host, port, null);
    }

    internal EndPoint ToEndPoint() => SocketPath is not null
        ? new UnixDomainSocketEndPoint(SocketPath)
        : IPAddress.TryParse(Host, out var ip) ? new IPEndPoint(ip, Port) : new DnsEndPoint(Host!, Port);

    /// <summary><c>tcp://host:port</c> or <c>unix:///path</c>.</summary>
    public override string ToString() => SocketPath is not null ? "unix://" + SocketPath
        : Host!.Contains(':') ? $"tcp://[{Host}]:{Port}" : $"tcp://{Host}:{Port}";

    private static ClamdException Bad(string value, string reason) =>
        new(ClamdErrors.BadEndpoint, $"Invalid clamd endpoint '{value}': {reason}.", isTransient: false);
}
