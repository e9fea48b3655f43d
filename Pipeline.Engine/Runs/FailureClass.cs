using System.Net.Sockets;
using Npgsql;
using Pipeline.Checkup.Scanning;
using Pipeline.Registry;

namespace Pipeline.Engine.Runs;

/// <summary>What a failed stage means for its delivery.</summary>
public enum FailureKind
{
    /// <summary>A finding about the delivery itself: it is rejected and quarantined.</summary>
    Verdict,

    /// <summary>
    /// Our own infrastructure failed (clamd, registry, VCS B, database, a full disk): nothing is
    /// known about the delivery, so it stays pending and is retried; never a rejection.
    /// </summary>
    Infrastructure,
}

/// <summary>
/// Sorts failures into verdicts and infrastructure outages, by the exception's type, its
/// transient flag and its stable code. Fail closed stays true either way: an outage never accepts
/// anything; it only keeps the supplier's delivery from being rejected for our fault.
/// </summary>
public static class FailureClass
{
    /// <summary>Engine codes that name our own infrastructure, not the delivery.</summary>
    private static readonly HashSet<string> InfrastructureCodes = new(StringComparer.Ordinal)
    {
        "PUBLISH-PUSH",      // VCS B unreachable or failing (a refusal of the tag is PUBLISH-REJECTED)
        "DB-UNREACHABLE",
        "ENG-CANCELLED",
        "ENG-INTERRUPTED",
        "ENG-DISK-FULL",
        "ENG-STAGE-ORDER",   // the engine broke its own step order (a bug of ours, never the supplier's)
        "VCS-NO-GIT",        // the engine's own git binary is missing
    };

    /// <summary>Registry codes about reaching or authenticating to our registry (its answers about content are not among them).</summary>
    private static readonly string[] RegistryInfrastructurePrefixes = ["REG-NET-", "REG-AUTH-", "REG-TLS-", "REG-PING-", "REG-ENDPOINT-"];

    public static FailureKind Classify(Exception e) => IsInfrastructure(e) ? FailureKind.Infrastructure : FailureKind.Verdict;

    public static bool IsInfrastructure(Exception e)
    {
        switch (e)
        {
            // Every ClamdException is about talking to clamd, never a verdict on content (findings are results).
            case ClamdException:
                return true;
            case RegistryException r when r.IsTransient || r.StatusCode >= 500 || RegistryInfrastructurePrefixes.Any(p => r.Code.StartsWith(p, StringComparison.Ordinal)):
                return true;
            case PipelineException p when InfrastructureCodes.Contains(p.Code):
                return true;
            case NpgsqlException or HttpRequestException or SocketException or TimeoutException:
                return true;
        }

        // A full disk or a lost database anywhere in the chain is ours, whatever wrapped it.
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (IsDiskFull(x) || x is NpgsqlException) return true;
        }

        return false;
    }

    private const int Enospc = 28, Edquot = 122;
    private const int WinDiskFull = unchecked((int)0x80070070), WinHandleDiskFull = unchecked((int)0x80070027);

    /// <summary>No space (or quota) left on the device: IOException with the errno as HResult, or libgit2's text for it.</summary>
    public static bool IsDiskFull(Exception e) =>
        (e is IOException io && io.HResult is Enospc or Edquot or WinDiskFull or WinHandleDiskFull)
        || (e is LibGit2Sharp.LibGit2SharpException && (e.Message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase)
                                                        || e.Message.Contains("Disk quota exceeded", StringComparison.OrdinalIgnoreCase)));
}
