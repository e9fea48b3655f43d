using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using Npgsql;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Ledger;
using Serilog;

namespace Pipeline.Engine.Notifications;

/// <summary>One notification as POSTed (camelCase JSON).</summary>
/// <param name="Id">Stable per event and webhook (<c>ledger-SEQ</c>): receivers drop repeats (delivery is at least once).</param>
/// <param name="Stage">The stage the event concerns (target stage of a request or promotion, the failed intake stage).</param>
public sealed record WebhookEvent(string Id, string Event, DateTimeOffset At, string Pipeline, Guid DeliveryId, string? Tag, string? Stage, string? Actor, string? Detail,
    string? ReasonCode, long? LogIndex);

/// <summary>
/// Tells webhooks about lifecycle events. The source is the ledger itself: every request,
/// promotion, refusal, withdrawal and failed stage is a row there, whichever process (CLI,
/// portal, daemon) recorded it, committed before anyone could notify about it. The ledger is the
/// outbox: the notifier reads rows after its cursor (one row per webhook in the database), POSTs each matching event (HMAC-signed, retried with backoff by
/// <see cref="RetryHandler"/>), and moves the cursor on. Nothing is lost while the receiver or the
/// notifier is down: the next poll starts where the cursor stands. An event whose attempts are
/// all used up is logged with code NOTIFY-FAILED and skipped, so one dead receiver never holds up
/// the others. Several processes (the portal and the daemon) may run notifiers over the same
/// database: a PostgreSQL session advisory lock per webhook lets one at a time send, checked
/// before every POST, and the cursor is a row in <c>notification_cursors</c> read and moved only
/// under that lock, so each event is sent once (again only if a process dies between the POST and
/// the cursor update). The lifecycle action itself never waits for or fails because of a webhook.
/// </summary>
public sealed class WebhookNotifier : IAsyncDisposable
{
    private const int Batch = 200;
    private readonly NotificationSettings _settings;
    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;
    private readonly LedgerStore _locks;
    private readonly string _cursorDir;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    /// <param name="inner">The HTTP handler under the retries (tests: default sockets handler).</param>
    /// <param name="baseDelay">First backoff delay (default 2 s; doubles per retry, with jitter).</param>
    internal WebhookNotifier(NotificationSettings settings, NpgsqlDataSource dataSource, bool ownsDataSource, string cursorDir, TimeProvider time, ILogger log,
        HttpMessageHandler? inner = null, TimeSpan? baseDelay = null)
    {
        _settings = settings;
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
        _locks = new LedgerStore(dataSource, time);
        _cursorDir = cursorDir;
        _time = time;
        _log = log.ForContext<WebhookNotifier>();
        _http = new HttpClient(new RetryHandler(settings.MaxAttempts, baseDelay ?? TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(15), time, _log)
        {
            InnerHandler = inner ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(10) },
        }) { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>
    /// The notifier of a running engine process (<c>pipeline portal serve</c>, <c>pipeline daemon</c>),
    /// or null when engine.yaml configures no webhook. Both processes may run it: per webhook one
    /// sends at a time and the cursor is shared, so each event goes out once.
    /// </summary>
    public static async Task<WebhookNotifier?> StartIfConfiguredAsync(Hosting.PipelineEngine engine, CancellationToken ct) =>
        engine.Settings.Notifications.Webhooks.Count == 0
            ? null
            : await StartAsync(engine.Settings.Notifications, engine.Settings.Database, engine.Settings.WorkDir, engine.Time, engine.Log, ct).ConfigureAwait(false);

    /// <summary>Starts polling every <see cref="NotificationSettings.PollInterval"/>; the first poll sets new cursors to the log's end.</summary>
    public static async Task<WebhookNotifier> StartAsync(NotificationSettings settings, DatabaseSettings database, string workDir, TimeProvider time, ILogger log, CancellationToken ct)
    {
        var source = LedgerStore.CreateDataSource(database.ConnectionString, database.PasswordFile);
        var n = new WebhookNotifier(settings, source, true, Path.Combine(workDir, "notifications"), time, log);
        await n.PollOnceAsync(ct).ConfigureAwait(false);
        n._loop = n.LoopAsync();
        return n;
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(_settings.PollInterval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
            {
                try
                {
                    await PollOnceAsync(_stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or IOException or PipelineLockLostException)
                {
                    _log.Warning("Webhook poll failed ({Type}: {Error}); next try in {Seconds} s", e.GetType().Name, e.Message, (int)_settings.PollInterval.TotalSeconds);
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>One pass: for every webhook, every new ledger row after its cursor. Returns how many events were delivered.</summary>
    public async Task<int> PollOnceAsync(CancellationToken ct)
    {
        var sent = 0;
        foreach (var hook in _settings.Webhooks)
        {
            // One sender per webhook across processes: the lock is held for the whole pass, and the
            // cursor lives in the database, read and moved only under it.
            await using var held = await _locks.TryLockPipelineAsync("notify:" + hook.Name, ct).ConfigureAwait(false);
            if (held is null) continue; // another process sends for this webhook now
            if (await ReadCursorAsync(hook.Name, ct).ConfigureAwait(false) is not { } cursor)
            {
                // First start: a cursor file of an older engine version carries on, else the end of the log.
                var legacy = ReadCursor(Path.Combine(_cursorDir, Lifecycle.StageDefaults.Slug(hook.Name) + ".cursor"));
                await WriteCursorAsync(hook.Name, legacy ?? await MaxSeqAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
                if (legacy is null)
                {
                    _log.Information("Webhook {Webhook}: starting at the end of the log", hook.ToString());
                    continue;
                }

                cursor = legacy.Value;
            }

            var secret = WebhookSignature.ReadSecret(hook.SecretFile);
            while (true)
            {
                var rows = await ReadAfterAsync(cursor, ct).ConfigureAwait(false);
                foreach (var (seq, ev) in rows)
                {
                    if (ev is not null && hook.Events.Contains(ev.Event))
                    {
                        await held.EnsureHeldAsync(ct).ConfigureAwait(false); // never send after losing the lock
                        if (await SendAsync(hook, secret, ev, ct).ConfigureAwait(false)) sent++;
                    }

                    cursor = seq;
                    await WriteCursorAsync(hook.Name, cursor, ct).ConfigureAwait(false);
                }

                if (rows.Count < Batch) break;
            }
        }

        return sent;
    }

    /// <summary>POSTs one event; false (logged NOTIFY-FAILED) when the receiver did not take it after every attempt.</summary>
    private async Task<bool> SendAsync(WebhookSettings hook, byte[] secret, WebhookEvent ev, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(ev, Api.AuditApiHost.Json);
        var timestamp = _time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        using var request = new HttpRequestMessage(HttpMethod.Post, hook.Url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add(WebhookSignature.TimestampHeader, timestamp);
        request.Headers.Add(WebhookSignature.SignatureHeader, WebhookSignature.Sign(secret, timestamp, body));
        request.Headers.Add(WebhookSignature.EventHeader, ev.Event);
        request.Headers.Add(WebhookSignature.IdHeader, ev.Id);
        try
        {
            using var response = await _http.SendAsync(request, ct).ConfigureAwait(false);
            if (response.IsSuccessStatusCode)
            {
                _log.Information("Webhook {Webhook}: {Event} {EventId} for {DeliveryId} delivered", hook.ToString(), ev.Event, ev.Id, ev.DeliveryId);
                return true;
            }

            _log.Error("NOTIFY-FAILED: webhook {Webhook} refused {Event} {EventId} for {DeliveryId} with HTTP {Status}", hook.ToString(), ev.Event, ev.Id, ev.DeliveryId,
                (int)response.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or Polly.Timeout.TimeoutRejectedException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            _log.Error("NOTIFY-FAILED: webhook {Webhook} unreachable for {Event} {EventId} for {DeliveryId} after {Attempts} attempts: {Error}", hook.ToString(), ev.Event, ev.Id,
                ev.DeliveryId, _settings.MaxAttempts, e.Message);
        }

        return false;
    }

    /// <summary>The event a ledger row means, or null when it means none.</summary>
    public static WebhookEvent? EventOf(long seq, Guid delivery, string pipeline, string? tag, string stage, bool passed, string? reasonCode, string? reason,
        IReadOnlyDictionary<string, string> evidence, DateTimeOffset at, long? logIndex)
    {
        var colon = stage.IndexOf(':');
        var (kind, target) = colon > 0 ? (stage[..colon], stage[(colon + 1)..]) : (stage, null);
        var name = kind switch
        {
            "request" when passed && evidence.GetValueOrDefault("rule") != "automatic" => NotificationEvents.ApprovalPending,
            "promotion" when passed => NotificationEvents.Promoted,
            "refusal" => NotificationEvents.Rejected,
            "withdrawal" => NotificationEvents.Withdrawn,
            "supersession" or "request" or "freigabe" => null,
            _ when !passed => NotificationEvents.StageFailed,
            _ => null,
        };
        if (name is null) return null;
        return new WebhookEvent($"ledger-{seq}", name, at, pipeline, delivery, tag, target ?? stage, evidence.GetValueOrDefault("actor") ?? evidence.GetValueOrDefault("approver"),
            evidence.GetValueOrDefault("detail") ?? reason, reasonCode, logIndex);
    }

    private async Task<IReadOnlyList<(long Seq, WebhookEvent? Event)>> ReadAfterAsync(long cursor, CancellationToken ct)
    {
        await using var cmd = _dataSource.CreateCommand(
            "select e.seq, e.delivery_id, e.pipeline, d.tag, e.stage, e.verdict, e.reason_code, e.reason, e.evidence, e.recorded_at, e.log_index " +
            "from ledger_entries e join deliveries d on d.id = e.delivery_id where e.seq > $1 order by e.seq limit " + Batch.ToString(CultureInfo.InvariantCulture));
        cmd.Parameters.AddWithValue(cursor);
        var list = new List<(long, WebhookEvent?)>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var seq = r.GetInt64(0);
            var evidence = EvidenceJson.Deserialize(r.GetString(8));
            list.Add((seq, EventOf(seq, r.GetGuid(1), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4), r.GetString(5) == "passed",
                r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7), evidence, r.GetFieldValue<DateTimeOffset>(9), r.IsDBNull(10) ? null : r.GetInt64(10))));
        }

        return list;
    }

    private async Task<long> MaxSeqAsync(CancellationToken ct)
    {
        await using var cmd = _dataSource.CreateCommand("select coalesce(max(seq), 0) from ledger_entries");
        return (long)(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private async Task<long?> ReadCursorAsync(string webhook, CancellationToken ct)
    {
        await using var cmd = _dataSource.CreateCommand("select seq from notification_cursors where webhook = $1");
        cmd.Parameters.AddWithValue(webhook);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is long v ? v : null;
    }

    private async Task WriteCursorAsync(string webhook, long seq, CancellationToken ct)
    {
        await using var cmd = _dataSource.CreateCommand(
            "insert into notification_cursors (webhook, seq, updated_at) values ($1, $2, $3) on conflict (webhook) do update set seq = excluded.seq, updated_at = excluded.updated_at");
        cmd.Parameters.AddWithValue(webhook);
        cmd.Parameters.AddWithValue(seq);
        cmd.Parameters.AddWithValue(LedgerEntry.TruncateToMicroseconds(_time.GetUtcNow()));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    /// <summary>The cursor file of engine versions before the cursor moved into the database (read once, on upgrade).</summary>
    private static long? ReadCursor(string file) =>
        File.Exists(file) && long.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _http.Dispose();
        _stop.Dispose();
        if (_ownsDataSource) await _dataSource.DisposeAsync().ConfigureAwait(false);
    }
}
