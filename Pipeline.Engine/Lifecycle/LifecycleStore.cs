using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// The lifecycle tables in PostgreSQL (schema step 4). Every change goes through a
/// <see cref="LifecycleTransaction"/>, which holds the delivery's row lock (<c>select … for update</c>)
/// and checks the row version on update: two approvals racing are serialised and the second sees
/// what the first did.
/// </summary>
public sealed class LifecycleStore(NpgsqlDataSource dataSource)
{
    internal const string Columns = "delivery_id, pipeline, tag, state, stage_index, stage, target_stage, stage_result, stage_result_digest, stage_result_at, images, reason_code, reason, version, updated_at, last_link";
    internal const string RequestColumns = "id, delivery_id, from_stage, to_stage, requested_by, requested_at, status, last_error, to_index";
    internal const string ApprovalColumns = "id, delivery_id, request_id, from_stage, to_stage, approver, entered_by, decision, comment, given_at, digests, stage_result_digest, signature_key, channel, log_index, void_reason";

    public async Task<DeliveryLifecycle?> GetAsync(Guid deliveryId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand($"select {Columns} from lifecycle_deliveries where delivery_id = $1");
        cmd.Parameters.AddWithValue(deliveryId);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadLifecycle(r).Lifecycle : null;
    }

    public async Task<IReadOnlyList<DeliveryLifecycle>> ListAsync(string? pipeline, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"select {Columns} from lifecycle_deliveries where ($1::text is null or pipeline = $1) order by pipeline, updated_at desc");
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)pipeline ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        var list = new List<DeliveryLifecycle>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadLifecycle(r).Lifecycle);
        return list;
    }

    /// <summary>Deliveries with an approved promotion that has not completed.</summary>
    public async Task<IReadOnlyList<Guid>> PromotingAsync(string? pipeline, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            "select delivery_id from lifecycle_deliveries where state = 'promoting' and ($1::text is null or pipeline = $1) order by updated_at");
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)pipeline ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
        var list = new List<Guid>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(r.GetGuid(0));
        return list;
    }

    public async Task<IReadOnlyList<PromotionRequest>> RequestsAsync(Guid? deliveryId, bool activeOnly, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"select {RequestColumns} from lifecycle_requests where ($1::uuid is null or delivery_id = $1) and (not $2 or status in ('open', 'approved')) order by requested_at");
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)deliveryId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        cmd.Parameters.AddWithValue(activeOnly);
        var list = new List<PromotionRequest>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadRequest(r));
        return list;
    }

    public async Task<IReadOnlyList<ApprovalRecord>> ApprovalsAsync(Guid deliveryId, Guid? requestId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"select {ApprovalColumns} from lifecycle_approvals where delivery_id = $1 and ($2::uuid is null or request_id = $2) order by given_at, id");
        cmd.Parameters.AddWithValue(deliveryId);
        cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)requestId ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
        var list = new List<ApprovalRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadApproval(r));
        return list;
    }

    /// <summary>Starts tracking an accepted delivery; false when it is tracked already.</summary>
    public async Task<bool> InsertAsync(DeliveryLifecycle l, string lastLink, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(
            $"insert into lifecycle_deliveries ({Columns}) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) on conflict (delivery_id) do nothing");
        AddLifecycle(cmd.Parameters, l, lastLink);
        return await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 1;
    }

    /// <summary>Opens a transaction holding the row lock of <paramref name="deliveryId"/>; null when it is not tracked.</summary>
    public async Task<LifecycleTransaction?> LockAsync(Guid deliveryId, CancellationToken ct)
    {
        var conn = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        var tx = await conn.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = new NpgsqlCommand($"select {Columns} from lifecycle_deliveries where delivery_id = $1 for update", conn, tx))
        {
            cmd.Parameters.AddWithValue(deliveryId);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var (l, link) = ReadLifecycle(r);
                await r.DisposeAsync().ConfigureAwait(false);
                return new LifecycleTransaction(conn, tx, l, link);
            }
        }

        await tx.DisposeAsync().ConfigureAwait(false);
        await conn.DisposeAsync().ConfigureAwait(false);
        return null;
    }

    internal static void AddLifecycle(NpgsqlParameterCollection p, DeliveryLifecycle l, string lastLink)
    {
        p.AddWithValue(l.DeliveryId);
        p.AddWithValue(l.Pipeline);
        p.AddWithValue(l.Tag);
        p.AddWithValue(StateText(l.State));
        p.AddWithValue(l.StageIndex);
        p.Add(Text(l.Stage));
        p.Add(Text(l.TargetStage));
        p.AddWithValue(l.Result.Result);
        p.AddWithValue(l.Result.Digest);
        p.AddWithValue(l.Result.At);
        p.AddWithValue(JsonSerializer.Serialize(l.Images.Select(i => new[] { i.Registry, i.Repository, i.Digest })));
        p.Add(Text(l.ReasonCode));
        p.Add(Text(l.Reason));
        p.AddWithValue(l.Version);
        p.AddWithValue(l.UpdatedAt);
        p.AddWithValue(lastLink);
    }

    internal static NpgsqlParameter Text(string? v) => new() { Value = (object?)v ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    internal static string StateText(LifecycleState s) => s switch
    {
        LifecycleState.AwaitingApproval => "awaiting_approval",
        LifecycleState.InStage => "in_stage",
        _ => s.ToString().ToLowerInvariant(),
    };

    internal static LifecycleState ParseState(string s) => Enum.Parse<LifecycleState>(s.Replace("_", "", StringComparison.Ordinal), ignoreCase: true);

    internal static (DeliveryLifecycle Lifecycle, string LastLink) ReadLifecycle(NpgsqlDataReader r)
    {
        var images = JsonSerializer.Deserialize<string[][]>(r.GetString(10))!.Select(a => new DeliveryImage(a[0], a[1], a[2])).ToList();
        var stage = r.IsDBNull(5) ? null : r.GetString(5);
        var l = new DeliveryLifecycle(r.GetGuid(0), r.GetString(1), r.GetString(2), ParseState(r.GetString(3)), r.GetInt32(4), stage,
            r.IsDBNull(6) ? null : r.GetString(6), new StageResult(stage ?? "intake", r.GetString(7), r.GetString(8), r.GetFieldValue<DateTimeOffset>(9)),
            images, r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12), r.GetInt64(13), r.GetFieldValue<DateTimeOffset>(14));
        return (l, r.GetString(15));
    }

    internal static PromotionRequest ReadRequest(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetGuid(1), r.IsDBNull(2) ? null : r.GetString(2), r.GetString(3), r.GetString(4), r.GetFieldValue<DateTimeOffset>(5),
            Enum.Parse<PromotionRequestStatus>(r.GetString(6), ignoreCase: true), r.IsDBNull(7) ? null : r.GetString(7));

    internal static ApprovalRecord ReadApproval(NpgsqlDataReader r) =>
        new(r.GetGuid(0), r.GetGuid(1), r.GetGuid(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6),
            r.GetString(7) == "approve" ? ApprovalDecision.Approve : ApprovalDecision.Reject, r.IsDBNull(8) ? null : r.GetString(8), r.GetFieldValue<DateTimeOffset>(9),
            r.GetString(10).Split(' ', StringSplitOptions.RemoveEmptyEntries), r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12), r.GetString(13),
            r.IsDBNull(14) ? null : r.GetInt64(14), r.IsDBNull(15) ? null : r.GetString(15));
}
