using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Ledger;
using Serilog;

namespace Pipeline.Engine.Audit;

/// <summary>
/// What the auditor's commands run on: the configured database connection (a role with SELECT
/// only is enough; every session is read-only, <c>default_transaction_read_only</c>), public keys,
/// and a ledger store that cannot sign. Unlike the engine it migrates nothing (it only checks the
/// schema version), loads no pipeline definitions, needs no private key, and reads engine.yaml in
/// the audit scope (<see cref="ConfigScope.Audit"/>: no clamd, registry or internal git settings needed).
/// </summary>
public sealed class AuditSession : IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;

    private AuditSession(EngineSettings settings, NpgsqlDataSource dataSource, KeyRing keys, TimeProvider time)
    {
        Settings = settings;
        _dataSource = dataSource;
        Keys = keys;
        Ledger = new LedgerStore(dataSource, time);
        Audit = new AuditService(Ledger, keys, settings.Ledger.Origin);
    }

    public EngineSettings Settings { get; }

    /// <summary>The keys trusted for signatures and checkpoints.</summary>
    public KeyRing Keys { get; }

    /// <summary>A store without a signing key: nothing done through it appends or signs.</summary>
    public LedgerStore Ledger { get; }

    public AuditService Audit { get; }

    /// <param name="keyFiles">Trusted engine public keys (PEM) given on the command line; when empty, see <see cref="TrustedKeys"/>.</param>
    /// <exception cref="PipelineException">AUDIT-NO-KEYS, DB-UNREACHABLE, DB-SCHEMA-OLD, DB-SCHEMA-NEWER.</exception>
    public static async Task<AuditSession> OpenAsync(string configPath, IReadOnlyList<string> keyFiles, TimeProvider time, ILogger log, CancellationToken ct)
    {
        var settings = EngineSettingsLoader.Load(configPath, ConfigScope.Audit);
        var keys = TrustedKeys(settings, keyFiles, log);
        var dataSource = CreateReadOnlyDataSource(settings.Database);
        try
        {
            await LedgerSchema.CheckVersionAsync(dataSource, ct).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw new PipelineException("DB-UNREACHABLE", $"cannot read the ledger database: {e.Message}", e);
        }
        catch (PipelineException)
        {
            await dataSource.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new AuditSession(settings, dataSource, keys, time) { Log = log, Time = time };
    }

    /// <summary>
    /// A data source on the configured (engine or auditor) role whose every transaction is read-only
    /// (<c>-c default_transaction_read_only=on</c>): even a role that could write cannot through it.
    /// </summary>
    public static NpgsqlDataSource CreateReadOnlyDataSource(DatabaseSettings database, Action<NpgsqlConnectionStringBuilder>? tune = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        var b = new NpgsqlConnectionStringBuilder(database.ConnectionString);
        b.Options = string.IsNullOrWhiteSpace(b.Options) ? ReadOnlyOption : b.Options + " " + ReadOnlyOption;
        tune?.Invoke(b);
        return LedgerStore.CreateDataSource(b.ConnectionString, database.PasswordFile);
    }

    private const string ReadOnlyOption = "-c default_transaction_read_only=on";

    /// <summary>
    /// The keys an auditor trusts: the PEM files given (<c>--key</c>); without any, the configured
    /// <c>attestation.verificationKeys</c> and the public half of <c>attestation.signingKeyFile</c>
    /// (or of the dev key in the work folder). None of them: AUDIT-NO-KEYS.
    /// </summary>
    public static KeyRing TrustedKeys(EngineSettings settings, IReadOnlyList<string> keyFiles, ILogger log)
    {
        if (keyFiles.Count > 0) return new KeyRing(keyFiles.Select(VerificationKey.FromPemFile));
        var keys = new List<VerificationKey>();
        var signingKey = settings.Attestation?.SigningKeyFile ?? Path.Combine(settings.WorkDir, "keys", "engine-attestation.pem");
        if (File.Exists(signingKey))
        {
            using var k = EngineSigningKey.FromPemFile(signingKey);
            keys.Add(k.Public);
            log.Information("Trusting the public half of the engine key {KeyFile} (key id {KeyId}); pass --key ENGINE.pub.pem to audit without the private key", signingKey, k.KeyId);
        }

        keys.AddRange((settings.Attestation?.VerificationKeyFiles ?? []).Select(VerificationKey.FromPemFile));
        return keys.Count > 0
            ? new KeyRing(keys)
            : throw new PipelineException("AUDIT-NO-KEYS", "no trusted engine key: pass --key ENGINE.pub.pem (the engine's published public key), or configure attestation.verificationKeys");
    }

    /// <summary>The log this session was opened with (for the API host).</summary>
    public ILogger Log { get; private init; } = Serilog.Core.Logger.None;

    public TimeProvider Time { get; private init; } = TimeProvider.System;

    public async ValueTask DisposeAsync() => await _dataSource.DisposeAsync().ConfigureAwait(false);
}
