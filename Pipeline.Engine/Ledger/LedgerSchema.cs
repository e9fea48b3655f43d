using Npgsql;

namespace Pipeline.Engine.Ledger;

/// <summary>
/// Versioned schema migrations. Each step runs once, in order, in its own transaction, under an
/// advisory lock so that two engines starting together do not race. Never edit a shipped step:
/// add a new one.
/// </summary>
public static class LedgerSchema
{
    private const long MigrationLockKey = 0x5049504C_4D494752; // "PIPLMIGR"

    private static readonly (int Version, string Sql)[] Steps =
    [
        (1, """
            create table deliveries (
                id uuid primary key,
                pipeline text not null,
                tag text not null,
                tag_object_id text not null,
                status text not null check (status in ('running', 'accepted', 'rejected')),
                reason_code text,
                reason text,
                image text,
                started_at timestamptz not null,
                finished_at timestamptz
            );
            create index deliveries_pipeline_tag on deliveries (pipeline, tag);
            create table ledger_entries (
                seq bigint primary key,
                delivery_id uuid not null references deliveries (id),
                pipeline text not null,
                stage text not null,
                verdict text not null check (verdict in ('passed', 'failed')),
                reason_code text,
                reason text,
                input_digest text,
                output_digest text,
                evidence text not null,
                recorded_at timestamptz not null,
                prev_hash text not null,
                entry_hash text not null unique
            );
            create index ledger_entries_delivery on ledger_entries (delivery_id, seq);
            """),
    ];

    public static int LatestVersion => Steps[^1].Version;

    public static async Task MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (var lk = new NpgsqlCommand("select pg_advisory_lock($1)", conn))
        {
            lk.Parameters.AddWithValue(MigrationLockKey);
            await lk.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        try
        {
            await using (var create = new NpgsqlCommand(
                             "create table if not exists schema_migrations (version int primary key, applied_at timestamptz not null default now())", conn))
                await create.ExecuteNonQueryAsync(ct).ConfigureAwait(false);

            int current;
            await using (var q = new NpgsqlCommand("select coalesce(max(version), 0) from schema_migrations", conn))
                current = Convert.ToInt32(await q.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            if (current > LatestVersion)
                throw new PipelineException("DB-SCHEMA-NEWER", $"the database schema is version {current}, newer than this engine knows ({LatestVersion}); upgrade the engine");

            foreach (var (version, sql) in Steps.Where(s => s.Version > current))
            {
                await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
                await using (var step = new NpgsqlCommand(sql, conn, tx)) await step.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                await using (var mark = new NpgsqlCommand("insert into schema_migrations (version) values ($1)", conn, tx))
                {
                    mark.Parameters.AddWithValue(version);
                    await mark.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await tx.CommitAsync(ct).ConfigureAwait(false);
            }
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("select pg_advisory_unlock($1)", conn);
            unlock.Parameters.AddWithValue(MigrationLockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }
}
