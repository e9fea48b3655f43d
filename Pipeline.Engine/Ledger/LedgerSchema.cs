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
        (2, """
            -- The transparency log: leaves are canonical DSSE envelopes (RFC 9162 leaf hash),
            -- log_nodes holds every perfect subtree hash so proofs read O(log n) stored nodes,
            -- log_checkpoints holds every signed checkpoint (C2SP signed note).
            create table log_leaves (
                idx bigint primary key check (idx >= 0),
                leaf_hash bytea not null check (length(leaf_hash) = 32),
                envelope bytea not null,
                delivery_id uuid,
                pipeline text not null,
                supplier text,
                stage text not null,
                verdict text not null check (verdict in ('passed', 'failed')),
                predicate_type text not null,
                key_id text not null,
                subjects text[] not null,
                materials text[] not null,
                recorded_at timestamptz not null
            );
            create index log_leaves_delivery on log_leaves (delivery_id, idx);
            create index log_leaves_subjects on log_leaves using gin (subjects);
            create index log_leaves_pipeline_time on log_leaves (pipeline, recorded_at);
            create table log_nodes (
                level int not null check (level >= 0 and level < 63),
                idx bigint not null check (idx >= 0),
                hash bytea not null check (length(hash) = 32),
                primary key (level, idx)
            );
            create table log_checkpoints (
                tree_size bigint primary key check (tree_size >= 0),
                root_hash bytea not null check (length(root_hash) = 32),
                note text not null,
                key_id text not null,
                created_at timestamptz not null
            );
            -- Each chained ledger entry points at the log leaf that attests it (null for entries
            -- written before this step, or by a store without a signing key).
            alter table ledger_entries add column log_index bigint unique references log_leaves (idx);

            -- Append-only, for everyone including the owner (a superuser can still disable
            -- triggers: that is what the Merkle log and the signed checkpoints are for).
            create function ledger_append_only() returns trigger language plpgsql as $$
            begin
                raise exception 'ledger table % is append-only: % is not allowed', tg_table_name, tg_op
                    using errcode = 'P0001', hint = 'the ledger is an audit record; append a new entry instead';
            end
            $$;
            create trigger ledger_entries_append_only before update or delete on ledger_entries for each row execute function ledger_append_only();
            create trigger ledger_entries_no_truncate before truncate on ledger_entries for each statement execute function ledger_append_only();
            create trigger log_leaves_append_only before update or delete on log_leaves for each row execute function ledger_append_only();
            create trigger log_leaves_no_truncate before truncate on log_leaves for each statement execute function ledger_append_only();
            create trigger log_nodes_append_only before update or delete on log_nodes for each row execute function ledger_append_only();
            create trigger log_nodes_no_truncate before truncate on log_nodes for each statement execute function ledger_append_only();
            create trigger log_checkpoints_append_only before update or delete on log_checkpoints for each row execute function ledger_append_only();
            create trigger log_checkpoints_no_truncate before truncate on log_checkpoints for each statement execute function ledger_append_only();
            """),
        (3, """
            -- Trace by digest looks in subjects or materials; without this index the materials
            -- half is a sequential scan (1.4 s at 1M entries, bench/ledger).
            create index log_leaves_materials on log_leaves using gin (materials);
            """),
        (4, """
            -- Trace by tag reads the signed log, not the mutable deliveries table: the tag is a
            -- lookup column copied from the statement (audit verify compares it with the signed one).
            alter table log_leaves add column tag text;
            create function ledger_statement_tag(envelope bytea) returns text language plpgsql as $$
            declare p jsonb;
            begin
                p := convert_from(decode(convert_from(envelope, 'UTF8')::jsonb->>'payload', 'base64'), 'UTF8')::jsonb;
                return coalesce(p->'predicate'->'delivery'->>'tag', p->'predicate'->'buildDefinition'->'internalParameters'->'delivery'->>'tag');
            exception when others then
                return null;
            end
            $$;
            alter table log_leaves disable trigger log_leaves_append_only;
            update log_leaves set tag = ledger_statement_tag(envelope);
            alter table log_leaves enable trigger log_leaves_append_only;
            drop function ledger_statement_tag(bytea);
            create index log_leaves_tag on log_leaves (tag, idx);
            """),
        (5, """
            -- An outage of our own infrastructure leaves a delivery 'pending' (retried with backoff
            -- at next_attempt_at); each retry is a new delivery row (attempt + 1, retry_of the one it
            -- replaces), which marks the one it replaces 'retried'.
            alter table deliveries drop constraint deliveries_status_check;
            alter table deliveries add constraint deliveries_status_check
                check (status in ('running', 'accepted', 'rejected', 'pending', 'retried'));
            alter table deliveries add column attempt int not null default 1 check (attempt >= 1);
            alter table deliveries add column next_attempt_at timestamptz;
            alter table deliveries add column retry_of uuid references deliveries (id);
            """),
        (6, """
            -- The delivery lifecycle after the intake push (issue 10): one row per accepted
            -- delivery (its state, stage, stage result and images; version = optimistic
            -- concurrency), promotion requests and the Freigaben given on them. The signed record
            -- of every step is in the transparency log; these tables are the working state.
            create table lifecycle_deliveries (
                delivery_id uuid primary key references deliveries (id),
                pipeline text not null,
                tag text not null,
                state text not null check (state in ('accepted', 'awaiting_approval', 'promoting', 'in_stage', 'final', 'rejected', 'withdrawn', 'superseded')),
                stage_index int not null check (stage_index >= -1),
                stage text,
                target_stage text,
                stage_result text not null,
                stage_result_digest text not null,
                stage_result_at timestamptz not null,
                images text not null,
                last_link text not null,
                reason_code text,
                reason text,
                version bigint not null default 0,
                updated_at timestamptz not null
            );
            create index lifecycle_deliveries_pipeline on lifecycle_deliveries (pipeline, state);
            create table lifecycle_requests (
                id uuid primary key,
                delivery_id uuid not null references deliveries (id),
                from_stage text,
                to_stage text not null,
                to_index int not null,
                requested_by text not null,
                requested_at timestamptz not null,
                status text not null check (status in ('open', 'approved', 'promoted', 'rejected', 'void')),
                last_error text,
                attempts int not null default 0
            );
            -- At most one open or approved request per delivery.
            create unique index lifecycle_requests_one_active on lifecycle_requests (delivery_id) where status in ('open', 'approved');
            create table lifecycle_approvals (
                id uuid primary key,
                request_id uuid not null references lifecycle_requests (id),
                delivery_id uuid not null references deliveries (id),
                from_stage text,
                to_stage text not null,
                approver text not null,
                entered_by text,
                decision text not null check (decision in ('approve', 'reject')),
                comment text,
                given_at timestamptz not null,
                digests text not null,
                stage_result_digest text not null,
                statement bytea,
                signature text,
                signature_key text,
                channel text not null,
                log_index bigint references log_leaves (idx),
                void_reason text
            );
            create index lifecycle_approvals_request on lifecycle_approvals (request_id, given_at);
            """),
        (7, Cluster.QuartzSchema.MigrationSql),
        (8, """
            -- Webhook cursors (Notifications/WebhookNotifier.cs): the last ledger seq each webhook has
            -- handled, shared by every engine process (portal, daemon) that sends for it.
            create table notification_cursors (
                webhook text primary key,
                seq bigint not null check (seq >= 0),
                updated_at timestamptz not null
            );
            """),
        (9, """
            -- The intake state machine (issue 10): the last step a delivery recorded, changed in the
            -- same transaction as that step's ledger entry (Ledger/IntakeState.cs has the allowed
            -- transitions). Existing rows get the state their status and ledger entries imply.
            alter table deliveries add column intake_state text not null default 'started'
                check (intake_state in ('started', 'fetched', 'verified', 'scanned', 'published', 'built', 'pushed', 'accepted', 'failed', 'interrupted'));
            alter table deliveries add column intake_updated_at timestamptz;
            update deliveries d set intake_state = case
                when d.status = 'accepted' then 'accepted'
                when d.status = 'rejected' then 'failed'
                when d.status in ('pending', 'retried') and d.reason_code in ('ENG-INTERRUPTED', 'ENG-CANCELLED') then 'interrupted'
                when d.status in ('pending', 'retried') then 'failed'
                when exists (select 1 from ledger_entries e where e.delivery_id = d.id and e.verdict = 'failed') then 'failed'
                else coalesce((select case e.stage when 'fetch' then 'fetched' when 'verify' then 'verified' when 'scan' then 'scanned'
                                                   when 'publish' then 'published' when 'build' then 'built' when 'push' then 'pushed' end
                               from ledger_entries e
                               where e.delivery_id = d.id and e.verdict = 'passed' and e.stage in ('fetch', 'verify', 'scan', 'publish', 'build', 'push')
                               order by e.seq desc limit 1), 'started')
                end;
            """),
    ];

    /// <summary>Tables of the delivery lifecycle: the engine reads, inserts and updates them (they are working state, the log is the record).</summary>
    public static readonly IReadOnlyList<string> LifecycleTables = ["lifecycle_deliveries", "lifecycle_requests", "lifecycle_approvals", "notification_cursors"];

    /// <summary>Tables the engine may only INSERT into and SELECT from.</summary>
    public static readonly IReadOnlyList<string> AppendOnlyTables = ["ledger_entries", "log_leaves", "log_nodes", "log_checkpoints"];

    public static int LatestVersion => Steps[^1].Version;

    /// <summary>
    /// Brings the schema up to date. When <paramref name="engineRole"/> is given (the engine
    /// connects as another role than the one migrating), that role gets SELECT and INSERT only on
    /// the ledger tables and may update the deliveries table (its status), nothing more.
    /// </summary>
    public static async Task MigrateAsync(NpgsqlDataSource dataSource, CancellationToken ct) => await MigrateAsync(dataSource, null, ct).ConfigureAwait(false);

    /// <inheritdoc cref="MigrateAsync(NpgsqlDataSource, CancellationToken)"/>
    public static async Task MigrateAsync(NpgsqlDataSource dataSource, string? engineRole, CancellationToken ct)
    {
        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (var lk = new NpgsqlCommand("select pg_advisory_lock($1)", conn))
        {
            lk.Parameters.AddWithValue(MigrationLockKey);
            await lk.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }

        var step = "the schema_migrations table";
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
                step = $"step {version} of {LatestVersion}";
                await using var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
                await using (var run = new NpgsqlCommand(sql, conn, tx)) await run.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                await using (var mark = new NpgsqlCommand("insert into schema_migrations (version) values ($1)", conn, tx))
                {
                    mark.Parameters.AddWithValue(version);
                    await mark.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }

                await tx.CommitAsync(ct).ConfigureAwait(false);
            }

            step = $"granting the engine role '{engineRole}' its rights";
            if (engineRole is not null) await GrantAsync(conn, engineRole, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (!DatabaseFailures.IsUnreachable(e))
        {
            throw DatabaseFailures.MigrationFailed(step, conn.UserName, e);
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("select pg_advisory_unlock($1)", conn);
            unlock.Parameters.AddWithValue(MigrationLockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Checks (as the engine role, which cannot migrate) that the schema is exactly this engine's version.</summary>
    public static async Task CheckVersionAsync(NpgsqlDataSource dataSource, CancellationToken ct)
    {
        await using var q = dataSource.CreateCommand("select coalesce(max(version), 0) from schema_migrations");
        var current = Convert.ToInt32(await q.ExecuteScalarAsync(ct).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
        if (current > LatestVersion)
            throw new PipelineException("DB-SCHEMA-NEWER", $"the database schema is version {current}, newer than this engine knows ({LatestVersion}); upgrade the engine");
        if (current < LatestVersion)
            throw new PipelineException("DB-SCHEMA-OLD", $"the database schema is version {current}, this engine needs {LatestVersion}; run the engine with database.migrationConnectionString (the owner role)");
    }

    private static async Task GrantAsync(NpgsqlConnection conn, string role, CancellationToken ct)
    {
        var r = QuoteIdent(role);
        var tables = string.Join(", ", AppendOnlyTables);
        var sql = $"""
            grant usage on schema public to {r};
            revoke all on {tables}, deliveries, schema_migrations from {r};
            grant select, insert on {tables} to {r};
            grant select, insert, update on deliveries to {r};
            grant select on schema_migrations to {r};
            revoke all on {string.Join(", ", LifecycleTables)} from {r};
            grant select, insert, update on {string.Join(", ", LifecycleTables)} to {r};
            {Cluster.QuartzSchema.GrantSql(r)}
            """;
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    internal static string QuoteIdent(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
}
