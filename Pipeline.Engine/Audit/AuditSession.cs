using Npgsql;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Ledger;
using Serilog;

namespace Pipeline.Engine.Audit;

/// <summary>
/// What the auditor's commands run on: the configured database connection (a role with SELECT
/// only is enough), public keys, and a ledger store that cannot sign. Unlike the engine it migrates
/// nothing (it only checks the schema version), loads no pipeline definitions and needs no private key.
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
        var settings = EngineSettingsLoader.Load(configPath);
        var keys = TrustedKeys(settings, keyFiles, log);
        var dataSource = LedgerStore.CreateDataSource(settings.Database.ConnectionString, settings.Database.PasswordFile);
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

        return new AuditSession(settings, dataSource, keys, time);
    }

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

    public async ValueTask DisposeAsync() => await _dataSource.DisposeAsync().ConfigureAwait(false);
}
