using System.CommandLine;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Quarantine;
using Pipeline.Engine.Runs;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline quarantine list|show|release</c>: rejected deliveries kept for review. A release names
/// its approver, is recorded in the ledger, and makes the delivery's tag due for a new attempt:
/// the next pass takes it through every stage again (a release waives no check).
/// </summary>
public static class QuarantineCommands
{
    /// <summary>Stage name of the ledger record written by a release.</summary>
    public const string ReleaseStage = "quarantine-release";

    public static Command Create(Option<string?> configOption, TextWriter stdout, TextWriter stderr)
    {
        var quarantine = new Command("quarantine", "rejected deliveries kept read-only for review");

        var list = new Command("list", "list quarantined deliveries, newest first");
        list.SetAction((p, _) => Run(stderr, () =>
        {
            var store = Store(p.GetValue(configOption));
            foreach (var e in store.List())
                stdout.WriteLine($"{e.DeliveryId}  {e.QuarantinedAt:yyyy-MM-ddTHH:mm:ssZ}  {e.Pipeline,-20} {e.Tag,-12} {e.Stage,-8} {e.Code,-16} " +
                                 (e.Problem is not null ? $"BROKEN: {e.Problem} ({e.Directory})" : e.Release is null ? "held" : "released by " + e.Release.Approver));
            return Task.FromResult(PipelineCli.Ok);
        }));
        quarantine.Subcommands.Add(list);

        var idArg = new Argument<Guid>("delivery") { Description = "delivery id" };
        var show = new Command("show", "show a quarantined delivery: the reason, the scan verdict and the files");
        show.Arguments.Add(idArg);
        show.SetAction((p, _) => Run(stderr, () =>
        {
            var e = Store(p.GetValue(configOption)).Get(p.GetValue(idArg));
            stdout.WriteLine($"delivery:    {e.DeliveryId}");
            stdout.WriteLine($"pipeline:    {e.Pipeline}");
            stdout.WriteLine($"tag:         {e.Tag} ({e.TagObjectId})");
            stdout.WriteLine($"rejected at: {e.Stage} {e.QuarantinedAt:O}");
            stdout.WriteLine($"reason:      {e.Code}: {e.Reason}");
            stdout.WriteLine($"folder:      {e.Directory}");
            stdout.WriteLine(e.Release is null ? "release:     not released" : $"release:     by {e.Release.Approver} at {e.Release.ReleasedAt:O}" + (e.Release.Note is null ? "" : $" ({e.Release.Note})"));
            var scan = Path.Combine(e.Directory, Stages.ScanStep.ReportFile);
            if (File.Exists(scan))
            {
                stdout.WriteLine("scan verdict:");
                stdout.WriteLine(File.ReadAllText(scan));
            }

            return Task.FromResult(PipelineCli.Ok);
        }));
        quarantine.Subcommands.Add(show);

        var approver = new Option<string>("--approver") { Description = "full name of the person who reviewed and approves the release", Required = true };
        var note = new Option<string?>("--note") { Description = "why it is released (recorded)" };
        var release = new Command("release", "record that a named approver released a quarantined delivery (written to release.json and the ledger)");
        release.Arguments.Add(idArg);
        release.Options.Add(approver);
        release.Options.Add(note);
        release.SetAction((p, ct) => Run(stderr, async () =>
        {
            var settings = EngineSettingsLoader.Load(PipelineCli.ResolveConfig(p.GetValue(configOption)));
            await using var dataSource = LedgerStore.CreateDataSource(settings.Database.ConnectionString, settings.Database.PasswordFile);
            var ledger = new LedgerStore(dataSource, TimeProvider.System);
            await ledger.MigrateAsync(ct).ConfigureAwait(false);
            var entry = await ReleaseAsync(new QuarantineStore(settings.WorkDir, TimeProvider.System), ledger, p.GetValue(idArg), p.GetValue(approver)!, p.GetValue(note), ct).ConfigureAwait(false);
            stdout.WriteLine($"released {entry.Record.DeliveryId} by {entry.Record.Evidence["approver"]}; ledger #{entry.Sequence} {entry.EntryHash}");
            return PipelineCli.Ok;
        }));
        quarantine.Subcommands.Add(release);
        return quarantine;
    }

    /// <summary>Releases a quarantined delivery and appends a <see cref="ReleaseStage"/> record for it to the ledger.</summary>
    public static async Task<LedgerEntry> ReleaseAsync(QuarantineStore store, LedgerStore ledger, Guid deliveryId, string approver, string? note, CancellationToken ct)
    {
        var entry = store.Release(deliveryId, approver, note);
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["approver"] = entry.Release!.Approver,
            ["releasedAt"] = entry.Release.ReleasedAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
            ["rejectedStage"] = entry.Stage,
            ["rejectedCode"] = entry.Code,
            ["quarantineDir"] = entry.Directory,
        };
        if (entry.Release.Note is { } n) evidence["note"] = n;
        var recorded = await ledger.AppendAsync(new StageRecord(deliveryId, entry.Pipeline, ReleaseStage, Verdict.Passed, null, null, null, null, evidence), ct).ConfigureAwait(false);
        await ledger.ReopenRejectedAsync(deliveryId, "QUARANTINE-RELEASED", $"released from quarantine by {entry.Release.Approver}; the next pass processes the tag again", ct).ConfigureAwait(false);
        return recorded;
    }

    private static QuarantineStore Store(string? config) =>
        new(EngineSettingsLoader.Load(PipelineCli.ResolveConfig(config)).WorkDir, TimeProvider.System);

    private static Task<int> Run(TextWriter stderr, Func<Task<int>> body) =>
        PipelineCli.Guard(stderr, body, e => e is PipelineException { Code: "QUARANTINE-NOT-FOUND" or "QUARANTINE-RELEASED" or "QUARANTINE-APPROVER" } ? PipelineCli.Rejected : null);
}
