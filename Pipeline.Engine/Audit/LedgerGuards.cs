using Npgsql;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>
/// What the database enforces on the ledger tables right now: the append-only triggers (present,
/// enabled, calling the refusing function), who owns the tables, which other roles may change them,
/// and which roles are superusers (they, and the owner, can always disable the triggers: that is
/// detected by the signed log, not prevented).
/// </summary>
public sealed record LedgerGuardReport(
    IReadOnlyList<string> EnabledTriggers,
    IReadOnlyList<string> Owners,
    IReadOnlyList<string> WriteGrants,
    IReadOnlyList<string> Superusers,
    IReadOnlyList<AuditProblem> Problems)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>Reads the guards from the catalogs (any role may; <c>audit verify</c> runs as a read-only role).</summary>
public static class LedgerGuards
{
    /// <summary>Privileges that let a role other than the owner change or unprotect a ledger table.</summary>
    private static readonly string[] Dangerous = ["UPDATE", "DELETE", "TRUNCATE", "TRIGGER"];

    public static IReadOnlyList<string> ExpectedTriggers =>
        LedgerSchema.AppendOnlyTables.SelectMany(t => new[] { $"{t}.{t}_append_only", $"{t}.{t}_no_truncate" }).ToList();

    public static async Task<LedgerGuardReport> CheckAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        var tables = LedgerSchema.AppendOnlyTables.ToArray();
        var problems = new List<AuditProblem>();

        var enabled = new List<string>();
        var present = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var cmd = dataSource.CreateCommand("""
            select c.relname || '.' || t.tgname, t.tgenabled::text, p.proname, position('raise exception' in lower(p.prosrc)) > 0
            from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_proc p on p.oid = t.tgfoid
            where c.relnamespace = current_schema()::regnamespace and c.relname = any($1) and not t.tgisinternal
            """))
        {
            cmd.Parameters.AddWithValue(tables);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var name = r.GetString(0);
                // 'O' fires in normal sessions, 'A' always; 'D' is disabled, 'R' fires only for replication.
                var state = r.GetString(1) is "O" or "A" ? "enabled" : "disabled";
                if (r.GetString(2) != "ledger_append_only" || !r.GetBoolean(3)) state = $"calls {r.GetString(2)}, which does not refuse the change";
                present[name] = state;
                if (state == "enabled") enabled.Add(name);
            }
        }

        foreach (var t in ExpectedTriggers)
        {
            if (!present.TryGetValue(t, out var state))
                problems.Add(new AuditProblem("LEDGER-GUARD-TRIGGER", $"append-only trigger {t} is missing: the table can be changed without a trace in the database"));
            else if (state != "enabled")
                problems.Add(new AuditProblem("LEDGER-GUARD-TRIGGER", $"append-only trigger {t} is {state}: the table can be changed without a trace in the database"));
        }

        var owners = new SortedSet<string>(StringComparer.Ordinal);
        var grants = new List<string>();
        await using (var cmd = dataSource.CreateCommand("""
            select c.relname, pg_get_userbyid(c.relowner),
                   case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end, a.privilege_type
            from pg_class c left join lateral aclexplode(c.relacl) a on true
            where c.relnamespace = current_schema()::regnamespace and c.relname = any($1)
            order by 1, 3, 4
            """))
        {
            cmd.Parameters.AddWithValue(tables);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                owners.Add(r.GetString(1));
                if (r.IsDBNull(3) || r.GetString(2) == r.GetString(1) || !Dangerous.Contains(r.GetString(3))) continue;
                grants.Add($"{r.GetString(3)} on {r.GetString(0)} to {r.GetString(2)}");
            }
        }

        foreach (var g in grants)
            problems.Add(new AuditProblem("LEDGER-GUARD-GRANT", $"{g}: a role other than the owner may change or unprotect a ledger table"));

        var superusers = new List<string>();
        await using (var cmd = dataSource.CreateCommand("select rolname from pg_roles where rolsuper order by 1"))
        {
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false)) superusers.Add(r.GetString(0));
        }

        return new LedgerGuardReport(enabled, owners.ToList(), grants, superusers, problems);
    }
}
