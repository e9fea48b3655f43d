using System.Collections;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using Pipeline.Engine.Api;
using Pipeline.Engine.Approvals;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Serilog;

namespace Pipeline.Engine.Hosting;

/// <summary>What a reload applies: every pipeline definition, the people file and the auditors' token hashes, all validated together.</summary>
public sealed record ConfigSnapshot(IReadOnlyList<PipelineDefinition> Pipelines, PeopleDirectory People, AuditApiTokens? AuditTokens);

/// <summary>The result of one check of the files: applied, refused (with every error) or unchanged.</summary>
public sealed record ReloadOutcome(bool Applied, IReadOnlyList<string> Errors, int Generation, DateTimeOffset At);

/// <summary>
/// Reloads pipeline definitions, the people file and the auditors' token file without a restart. A change seen by a
/// <see cref="FileSystemWatcher"/> (or by the periodic check, which also catches what a watcher misses: network file
/// systems, editors that replace folders) is validated as a whole, exactly as at start; it takes effect whole, or it is
/// refused whole with every error logged, and the running configuration stays. Changes of <c>engine.yaml</c> itself
/// (database, clamd, registry, listen addresses) still need a restart.
/// </summary>
public sealed class ConfigWatcher : IDisposable
{
    public const string MeterName = "Pipeline.Engine.Reload";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Reloads = Meter.CreateCounter<long>("pipeline.config.reloads", "{reload}", "Configuration changes seen, by result (applied, refused)");

    private readonly EngineSettings _settings;
    private readonly Action<ConfigSnapshot> _apply;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly TimeSpan _poll;
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly SemaphoreSlim _signal = new(0, int.MaxValue);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private string _fingerprint;
    private int _generation;

    /// <param name="apply">Called with a snapshot that validated in full (never with a partial one).</param>
    /// <param name="poll">How often the files are compared even without a watcher event.</param>
    public ConfigWatcher(EngineSettings settings, Action<ConfigSnapshot> apply, ILogger log, TimeProvider time, TimeSpan poll)
    {
        _settings = settings;
        _apply = apply;
        _log = log;
        _time = time;
        _poll = poll;
        _fingerprint = Fingerprint();
        Watch(settings.PipelinesDir, "*");
        foreach (var file in new[] { settings.PeopleFile, settings.Audit.ApiTokensFile }.OfType<string>())
            Watch(Path.GetDirectoryName(file)!, Path.GetFileName(file));
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The default periodic check.</summary>
    public static readonly TimeSpan DefaultPoll = TimeSpan.FromSeconds(30);

    /// <summary>The last outcome (null until a change was seen).</summary>
    public ReloadOutcome? Last { get; private set; }

    /// <summary>
    /// Starts watching <paramref name="engine"/>'s files; applies to the engine and, when given, the
    /// auditors' tokens of a running API and the schedules (<paramref name="reschedule"/>: the daemon
    /// stores changed cron triggers in the cluster's job store).
    /// </summary>
    public static ConfigWatcher Start(PipelineEngine engine, AuditApiTokens? liveTokens = null, TimeSpan? poll = null,
        Func<IReadOnlyList<PipelineDefinition>, Task>? reschedule = null) =>
        new(engine.Settings, s =>
        {
            var before = engine.Pipelines.ToDictionary(p => p.Name, p => p.Schedule, StringComparer.Ordinal);
            engine.Apply(s);
            var moved = s.Pipelines.Where(p => !before.TryGetValue(p.Name, out var old) || old != p.Schedule).Select(p => p.Name)
                .Concat(before.Keys.Except(s.Pipelines.Select(p => p.Name), StringComparer.Ordinal)).ToList();
            if (moved.Count > 0 && reschedule is null)
                engine.Log.Warning("Pipelines {Pipelines} were added, removed or got a new schedule: their definitions are in use, but only a daemon schedules them", moved);
            else if (moved.Count > 0)
                Reschedule(engine, reschedule!, s.Pipelines, moved);
            if (liveTokens is not null && s.AuditTokens is not null) liveTokens.Replace(s.AuditTokens);
        }, engine.Log, engine.Time, poll ?? DefaultPoll);

    private static void Reschedule(PipelineEngine engine, Func<IReadOnlyList<PipelineDefinition>, Task> reschedule, IReadOnlyList<PipelineDefinition> pipelines, List<string> moved)
    {
        try
        {
            reschedule(pipelines).GetAwaiter().GetResult();
            engine.Log.Information("Schedules of {Pipelines} stored in the cluster's job store", moved);
        }
        catch (Exception e) when (e is Quartz.SchedulerException or Npgsql.NpgsqlException or InvalidOperationException)
        {
            engine.Log.Error("Could not store the new schedules of {Pipelines}: {Error}; they take effect when a daemon starts", moved, e.Message);
        }
    }

    private void Watch(string dir, string filter)
    {
        if (!Directory.Exists(dir)) return;
        var w = new FileSystemWatcher(dir, filter)
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime | NotifyFilters.DirectoryName,
            IncludeSubdirectories = false,
        };
        w.Changed += (_, _) => Signal();
        w.Created += (_, _) => Signal();
        w.Deleted += (_, _) => Signal();
        w.Renamed += (_, _) => Signal();
        w.Error += (_, _) => Signal();
        w.EnableRaisingEvents = true;
        _watchers.Add(w);
    }

    private void Signal()
    {
        try
        {
            _signal.Release();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task LoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            try
            {
                using (var wake = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    var signalled = _signal.WaitAsync(wake.Token);
                    await Task.WhenAny(signalled, Task.Delay(_poll, _time, wake.Token)).ConfigureAwait(false);
                    await wake.CancelAsync().ConfigureAwait(false);
                    ct.ThrowIfCancellationRequested();
                }

                // Editors write in several steps: let a burst of events settle, then read once.
                await Task.Delay(TimeSpan.FromMilliseconds(300), _time, ct).ConfigureAwait(false);
                while (_signal.CurrentCount > 0) await _signal.WaitAsync(ct).ConfigureAwait(false);
                CheckNow();
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _log.Error(e, "Configuration check failed; the running configuration stays");
            }
        }
    }

    /// <summary>Compares the files with the last state seen and, if they changed, validates and applies or refuses them.</summary>
    public ReloadOutcome? CheckNow()
    {
        var fingerprint = Fingerprint();
        if (fingerprint == _fingerprint) return null;
        _fingerprint = fingerprint;
        var generation = Interlocked.Increment(ref _generation);
        var (snapshot, errors) = Validate(_settings);
        if (snapshot is null)
        {
            Reloads.Add(1, new KeyValuePair<string, object?>("result", "refused"));
            _log.Error("Configuration change refused with {Count} error(s); the running configuration stays unchanged: {Errors}", errors.Count, errors);
            return Last = new ReloadOutcome(false, errors, generation, _time.GetUtcNow());
        }

        _apply(snapshot);
        Reloads.Add(1, new KeyValuePair<string, object?>("result", "applied"));
        _log.Information("Configuration reloaded: {Count} pipeline(s) {Pipelines}, {People} people, {Tokens} auditor token(s)",
            snapshot.Pipelines.Count, snapshot.Pipelines.Select(p => p.Name), snapshot.People.People.Count, snapshot.AuditTokens?.Count ?? 0);
        return Last = new ReloadOutcome(true, [], generation, _time.GetUtcNow());
    }

    /// <summary>Loads everything a reload covers, as strictly as at start; a snapshot only when there is no error at all.</summary>
    public static (ConfigSnapshot? Snapshot, IReadOnlyList<string> Errors) Validate(EngineSettings settings)
    {
        var errors = new List<string>();
        IReadOnlyList<PipelineDefinition>? pipelines = null;
        try
        {
            pipelines = PipelineDefinitionLoader.LoadFolder(settings.PipelinesDir, checkEnvironment: true);
        }
        catch (ConfigurationException e)
        {
            errors.AddRange(e.Errors.Select(x => x.ToString()));
        }

        if (pipelines is not null)
        {
            var tenancy = new ConfigErrors();
            Tenancy.TenancyValidator.Check(settings.Tenants, settings.Stages, pipelines, tenancy);
            errors.AddRange(tenancy.All.Select(x => x.ToString()));
        }

        var people = PeopleDirectory.Empty;
        if (settings.PeopleFile is { } peopleFile)
        {
            var found = new ConfigErrors();
            people = PeopleDirectory.Load(peopleFile, found, settings.Tenants) ?? PeopleDirectory.Empty;
            errors.AddRange(found.All.Select(x => x.ToString()));
        }

        AuditApiTokens? tokens = null;
        if (settings.Audit.ApiTokensFile is { } tokenFile)
        {
            try
            {
                tokens = AuditApiTokens.Load(tokenFile, settings.Tenants);
            }
            catch (PipelineException e)
            {
                errors.Add($"{e.Code}: {e.Message}");
            }
        }

        return errors.Count > 0 || pipelines is null ? (null, errors) : (new ConfigSnapshot(pipelines, people, tokens), errors);
    }

    /// <summary>SHA-256 over the names and contents of every watched file (so a touch without a change does nothing).</summary>
    private string Fingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var files = Directory.Exists(_settings.PipelinesDir) ? Directory.EnumerateFiles(_settings.PipelinesDir, "*", SearchOption.AllDirectories).ToList() : [];
        files.AddRange(new[] { _settings.PeopleFile, _settings.Audit.ApiTokensFile }.OfType<string>());
        foreach (var f in files.Order(StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(f + "\0"));
            try
            {
                hash.AppendData(File.ReadAllBytes(f));
            }
            catch (IOException)
            {
                hash.AppendData("missing\0"u8);
            }
            catch (UnauthorizedAccessException)
            {
                hash.AppendData("unreadable\0"u8);
            }
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    public void Dispose()
    {
        foreach (var w in _watchers) w.Dispose();
        _stop.Cancel();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }

        _stop.Dispose();
        _signal.Dispose();
    }
}

/// <summary>A read-only list that always reads the engine's current pipelines (for components built once, e.g. the portal).</summary>
public sealed class LivePipelines(Func<IReadOnlyList<PipelineDefinition>> current) : IReadOnlyList<PipelineDefinition>
{
    public PipelineDefinition this[int index] => current()[index];

    public int Count => current().Count;

    public IEnumerator<PipelineDefinition> GetEnumerator() => current().GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
