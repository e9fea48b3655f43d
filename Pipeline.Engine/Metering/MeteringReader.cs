using System.Data;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Tenancy;

namespace Pipeline.Engine.Metering;

/// <summary>
/// Computes a <see cref="MeteringReport"/> from the database alone, in one read-only, repeatable-read transaction
/// (every number from the same snapshot): the deliveries table (accepted, rejected, pending), the ledger's stage
/// entries (scan evidence: files and bytes; <c>promotion:STAGE</c> entries: promotions, the storage each image
/// occupies in its stage, and when a delivery reached the last stage; <c>withdrawal</c> entries) and the retry chain
/// of deliveries (intake start = the first attempt's start). Nothing asks the registry.
/// </summary>
public sealed class MeteringReader(NpgsqlDataSource dataSource)
{
    private const string PromotionPrefix = "promotion:";

    /// <param name="tenants">engine.yaml <c>tenants:</c>: which tenant each pipeline belongs to.</param>
    /// <param name="tenant">Only this tenant's pipelines; null: every pipeline (with or without a tenant).</param>
    /// <param name="finalStageOf">The last stage of a pipeline's stage plan.</param>
    /// <exception cref="PipelineException">REPORT-TENANT-UNKNOWN.</exception>
    public async Task<MeteringReport> ReadAsync(MeteringPeriod period, TenantDirectory tenants, string? tenant, Func<string, string> finalStageOf, DateTimeOffset now, CancellationToken ct)
    {
        var only = PipelinesOf(tenants, tenant);

        var acc = new Dictionary<string, Accumulator>(StringComparer.Ordinal);
        Accumulator Row(string pipeline) => acc.TryGetValue(pipeline, out var a) ? a : acc[pipeline] = new Accumulator();
        foreach (var p in only ?? tenants.Tenants.SelectMany(t => t.Pipelines).ToArray()) Row(p);

        await using var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await conn.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
        await using (var ro = new NpgsqlCommand("set transaction read only", conn, tx)) await ro.ExecuteNonQueryAsync(ct).ConfigureAwait(false);

        NpgsqlCommand Command(string sql)
        {
            var cmd = new NpgsqlCommand(sql, conn, tx);
            cmd.Parameters.AddWithValue(period.Start);
            cmd.Parameters.AddWithValue(period.End);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)only ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            return cmd;
        }

        await using (var cmd = Command(Sql.Deliveries))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var a = Row(r.GetString(0));
                (a.Accepted, a.Rejected, a.Pending) = (r.GetInt64(1), r.GetInt64(2), r.GetInt64(3));
            }

        await using (var cmd = Command(Sql.Withdrawn))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            while (await r.ReadAsync(ct).ConfigureAwait(false)) Row(r.GetString(0)).Withdrawn = r.GetInt64(1);

        await using (var cmd = Command(Sql.Scanned))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var a = Row(r.GetString(0));
                (a.Files, a.Bytes) = (r.GetInt64(1), r.GetInt64(2));
            }

        await using (var cmd = Command(Sql.Promotions))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            while (await r.ReadAsync(ct).ConfigureAwait(false)) Row(r.GetString(0)).Promotions[r.GetString(1)] = r.GetInt64(2);

        await using (var cmd = Command(Sql.Storage))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            while (await r.ReadAsync(ct).ConfigureAwait(false)) Row(r.GetString(0)).AddStorage(r.GetString(1), EvidenceJson.Deserialize(r.GetString(2)));

        await using (var cmd = Command(Sql.Reached))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var pipeline = r.GetString(0);
                if (!string.Equals(r.GetString(1), finalStageOf(pipeline), StringComparison.OrdinalIgnoreCase) || r.IsDBNull(3)) continue;
                var seconds = (r.GetFieldValue<DateTimeOffset>(2) - r.GetFieldValue<DateTimeOffset>(3)).TotalSeconds;
                Row(pipeline).ToFinal.Add(Math.Round(seconds, 3));
            }

        await tx.CommitAsync(ct).ConfigureAwait(false);
        var rows = acc.Select(kv => kv.Value.ToRow(EngineTenant(tenants, kv.Key), kv.Key, finalStageOf(kv.Key)))
            .OrderBy(x => x.Tenant, StringComparer.Ordinal).ThenBy(x => x.Pipeline, StringComparer.Ordinal).ToList();
        return new MeteringReport(period, tenant, now, now >= period.End, rows);
    }

    /// <summary>The pipelines of <paramref name="tenant"/>, or null (every pipeline) when it is null.</summary>
    /// <exception cref="PipelineException">REPORT-TENANT-UNKNOWN.</exception>
    public static string[]? PipelinesOf(TenantDirectory tenants, string? tenant)
    {
        if (tenant is null) return null;
        var t = tenants.Find(tenant) ?? throw new PipelineException(MeteringErrors.TenantUnknown, tenants.Configured
            ? $"--tenant '{tenant}' is not a tenant of engine.yaml; the tenants are: {string.Join(", ", tenants.Tenants.Select(x => x.Id))}"
            : $"--tenant '{tenant}': engine.yaml configures no tenants (tenants:); leave --tenant out to report every pipeline");
        return [.. t.Pipelines];
    }

    private static string EngineTenant(TenantDirectory tenants, string pipeline) => Observability.EngineMetrics.TenantOf(tenants, pipeline);

    private sealed class Accumulator
    {
        public long Accepted, Rejected, Pending, Withdrawn, Files, Bytes;
        public readonly SortedDictionary<string, long> Promotions = new(StringComparer.Ordinal);
        public readonly List<double> ToFinal = [];
        private readonly SortedDictionary<string, Dictionary<string, long>> _objects = new(StringComparer.Ordinal);
        private readonly HashSet<(string Stage, string Image)> _unmeasured = [];

        /// <summary>The images one passed promotion put into <paramref name="stage"/>: each <c>REPO.source</c> names one.</summary>
        public void AddStorage(string stage, IReadOnlyDictionary<string, string> evidence)
        {
            if (!_objects.TryGetValue(stage, out var objects)) _objects[stage] = objects = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var (key, source) in evidence.Where(e => e.Key.EndsWith(".source", StringComparison.Ordinal)))
            {
                var repo = key[..^".source".Length];
                var parsed = evidence.TryGetValue(repo + StorageEvidence.ObjectsSuffix, out var value) ? StorageEvidence.Parse(value) : null;
                if (parsed is null)
                {
                    _unmeasured.Add((stage, repo + "@" + source[(source.LastIndexOf('@') + 1)..]));
                    continue;
                }

                foreach (var (digest, size) in parsed) objects[digest] = size;
            }
        }

        public MeteringRow ToRow(string tenant, string pipeline, string finalStage) => new(
            tenant, pipeline, Accepted, Rejected, Pending, Withdrawn, Files, Bytes, Promotions,
            _objects.ToDictionary(kv => kv.Key, kv => kv.Value.Values.Sum(), StringComparer.Ordinal).ToSortedView(),
            _unmeasured.Count, finalStage, ToFinal);
    }

    /// <summary>The queries; $1 = period start, $2 = period end (exclusive), $3 = the pipelines to report (null: all).</summary>
    private static class Sql
    {
        private const string Only = "($3::text[] is null or pipeline = any($3))";

        /// <summary>A decimal count from the evidence JSON, or null (never a cast error on odd text).</summary>
        private static string Int(string json) => $"(case when {json} ~ '^[0-9]{{1,18}}$' then ({json})::bigint end)";

        public static readonly string Deliveries = $"""
            select pipeline,
                   count(*) filter (where status = 'accepted' and finished_at >= $1 and finished_at < $2),
                   count(*) filter (where status = 'rejected' and finished_at >= $1 and finished_at < $2),
                   count(*) filter (where status = 'pending' and started_at >= $1 and started_at < $2)
            from deliveries
            where {Only} and ((finished_at >= $1 and finished_at < $2) or (started_at >= $1 and started_at < $2))
            group by pipeline
            """;

        public static readonly string Withdrawn = $"""
            select pipeline, count(distinct delivery_id) from ledger_entries
            where stage = 'withdrawal' and recorded_at >= $1 and recorded_at < $2 and {Only}
            group by pipeline
            """;

        // Scan entries before the engine recorded bytesScanned: the fetch stage's bytes of the same delivery
        // (the scan reads every delivered file, which the checksum manifest must cover).
        public static readonly string Scanned = $"""
            select pipeline, coalesce(sum(files), 0)::bigint, coalesce(sum(bytes), 0)::bigint from (
                select e.pipeline, {Int("e.evidence::jsonb->>'filesScanned'")} as files,
                       coalesce({Int("e.evidence::jsonb->>'bytesScanned'")},
                                (select {Int("f.evidence::jsonb->>'bytes'")} from ledger_entries f
                                 where f.delivery_id = e.delivery_id and f.stage = 'fetch' and f.seq < e.seq order by f.seq desc limit 1)) as bytes
                from ledger_entries e
                where e.stage = 'scan' and e.recorded_at >= $1 and e.recorded_at < $2 and e.evidence::jsonb ? 'filesScanned'
                      and ($3::text[] is null or e.pipeline = any($3))
            ) s
            group by pipeline
            """;

        public static readonly string Promotions = $"""
            select pipeline, substr(stage, {PromotionPrefix.Length + 1}), count(*) from ledger_entries
            where stage like '{PromotionPrefix}%' and verdict = 'passed' and recorded_at >= $1 and recorded_at < $2 and {Only}
            group by 1, 2
            """;

        // What is in a stage at the end: every image promoted into it before the end, less those of deliveries
        // withdrawn before the end (a Rücknahme deletes their manifests from every stage they entered).
        public static readonly string Storage = $"""
            select e.pipeline, substr(e.stage, {PromotionPrefix.Length + 1}), e.evidence from ledger_entries e
            where e.stage like '{PromotionPrefix}%' and e.verdict = 'passed' and e.recorded_at < $2
                  and ($3::text[] is null or e.pipeline = any($3))
                  and not exists (select 1 from ledger_entries w where w.delivery_id = e.delivery_id and w.stage = 'withdrawal' and w.recorded_at < $2)
            order by e.seq
            """;

        // Promotions in the month with the start of the delivery's first attempt (walking retry_of back).
        public static readonly string Reached = $"""
            with recursive reached as (
                select pipeline, delivery_id, substr(stage, {PromotionPrefix.Length + 1}) as stage, min(recorded_at) as at from ledger_entries
                where stage like '{PromotionPrefix}%' and verdict = 'passed' and recorded_at >= $1 and recorded_at < $2 and {Only}
                group by 1, 2, 3
            ), back(target, id, retry_of, started_at) as (
                select d.id, d.id, d.retry_of, d.started_at from deliveries d where d.id in (select delivery_id from reached)
                union all
                select b.target, p.id, p.retry_of, p.started_at from back b join deliveries p on p.id = b.retry_of
            )
            select r.pipeline, r.stage, r.at, (select min(b.started_at) from back b where b.target = r.delivery_id)
            from reached r
            """;
    }
}

internal static class SortedViews
{
    public static IReadOnlyDictionary<string, long> ToSortedView(this Dictionary<string, long> d) => new SortedDictionary<string, long>(d, StringComparer.Ordinal);
}
