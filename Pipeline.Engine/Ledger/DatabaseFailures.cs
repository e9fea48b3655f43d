using System.Text.RegularExpressions;
using Npgsql;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Tells a database we cannot reach (refused, timed out, wrong credentials, no such database, too
/// many clients: <c>DB-UNREACHABLE</c>) from one that answered and refused a migration step
/// (<c>DB-MIGRATION-FAILED</c>, naming the step, the SQL state and, for a missing right, which role
/// needs which right). Both are our own infrastructure, never a finding about a delivery.
/// </summary>
public static partial class DatabaseFailures
{
    public const string UnreachableCode = "DB-UNREACHABLE";
    public const string MigrationFailedCode = "DB-MIGRATION-FAILED";

    /// <summary>
    /// True when the database was not reached or refused the session itself: no server answer at all
    /// (socket, timeout, TLS), or an answer of class 08 (connection), 28 (authorization), 3D000 (no such
    /// database), 53300 (too many clients), 57P01–57P03 (shutting down or starting).
    /// </summary>
    public static bool IsUnreachable(NpgsqlException e) => e is not PostgresException pg
        || pg.SqlState.StartsWith("08", StringComparison.Ordinal)
        || pg.SqlState.StartsWith("28", StringComparison.Ordinal)
        || pg.SqlState is PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.TooManyConnections
            or PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow;

    /// <summary>DB-UNREACHABLE naming the connection (role, host, port, database; never a password).</summary>
    public static PipelineException Unreachable(string what, string connectionString, NpgsqlException e)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        var state = e is PostgresException pg ? $" (SQL state {pg.SqlState})" : "";
        return new PipelineException(UnreachableCode,
            $"cannot reach the ledger database ({what}: role '{b.Username}' at {b.Host}:{b.Port}/{b.Database}){state}: {e.Message}", e);
    }

    /// <summary>DB-MIGRATION-FAILED: the step, the SQL state, the server's message and, for a missing right, who needs which.</summary>
    public static PipelineException MigrationFailed(string step, string? role, PostgresException e)
    {
        var what = $"the ledger schema migration failed at {step} as role '{role}' (SQL state {e.SqlState}): {e.MessageText}";
        if (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            what += $"; role '{role}' needs {NeededRight(e.MessageText)}: run the migration as the schema owner (database.migrationConnectionString) or grant it";
        else if (e.Detail is { Length: > 0 } d) what += $" ({d})";
        return new PipelineException(MigrationFailedCode, what, e);
    }

    /// <summary>Reads the right a permission error names (PostgreSQL's messages are stable in English).</summary>
    internal static string NeededRight(string message)
    {
        if (SchemaDenied().Match(message) is { Success: true } s) return $"CREATE and USAGE on schema {s.Groups[1].Value}";
        if (OwnerNeeded().Match(message) is { Success: true } o) return $"ownership of {o.Groups[1].Value} {o.Groups[2].Value}";
        if (ObjectDenied().Match(message) is { Success: true } t) return $"the right on {t.Groups[1].Value} {t.Groups[2].Value} that this step uses (SELECT/INSERT, or ownership to alter it)";
        if (message.Contains("database", StringComparison.Ordinal)) return "CREATE on the database";
        return "the privilege named by the server's message";
    }

    [GeneratedRegex(@"permission denied for schema (\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex SchemaDenied();

    [GeneratedRegex(@"must be owner of (table|relation|function|sequence|schema|index|view) (\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex OwnerNeeded();

    [GeneratedRegex(@"permission denied for (table|relation|function|sequence|view) (\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex ObjectDenied();
}
