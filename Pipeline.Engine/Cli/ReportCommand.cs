using System.CommandLine;
using Pipeline.Engine.Configuration;
using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Metering;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline report [--month YYYY-MM] [--tenant ID] [--format csv|json] [--out FILE]</c>: the monthly metering
/// report (<see cref="MeteringReader"/>), read from the database with a read-only connection; needs neither the
/// registry nor clamd. Exit 2 for a bad month or an unknown tenant (REPORT-MONTH-INVALID, REPORT-TENANT-UNKNOWN).
/// </summary>
public static class ReportCommand
{
    public static Command Create(Option<string?> config, TextWriter stdout, TextWriter stderr, TimeProvider? time = null)
    {
        var clock = time ?? TimeProvider.System;
        var month = new Option<string?>("--month") { Description = "the calendar month (UTC) to report, YYYY-MM (default: the previous month)" };
        var tenant = new Option<string?>("--tenant") { Description = "only this tenant's applications (engine.yaml tenants:)" };
        var format = new Option<string>("--format") { Description = "csv (one row per tenant and application) or json (the same, with the period and generation time)", DefaultValueFactory = _ => "csv" };
        format.AcceptOnlyFromAmong("csv", "json");
        var output = new Option<string?>("--out") { Description = "write to this file (atomically: a temporary file, then renamed) instead of stdout" };

        var report = new Command("report", "monthly metering per tenant and application: deliveries accepted and rejected, bytes scanned, promotions, image storage per stage, time to the last stage");
        report.Options.Add(month);
        report.Options.Add(tenant);
        report.Options.Add(format);
        report.Options.Add(output);
        report.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            var now = clock.GetUtcNow();
            var period = p.GetValue(month) is { } m ? MeteringPeriod.Parse(m, now) : MeteringPeriod.Previous(now);
            var settings = EngineSettingsLoader.Load(PipelineCli.ResolveConfig(p.GetValue(config)), ConfigScope.Audit);
            _ = MeteringReader.PipelinesOf(settings.Tenants, p.GetValue(tenant)); // an unknown tenant fails before the database is asked
            var finalOf = FinalStages(settings);
            var dataSource = Audit.AuditSession.CreateReadOnlyDataSource(settings.Database);
            MeteringReport result;
            await using (dataSource.ConfigureAwait(false))
            {
                await LedgerSchema.CheckVersionAsync(dataSource, ct).ConfigureAwait(false);
                result = await new MeteringReader(dataSource).ReadAsync(period, settings.Tenants, p.GetValue(tenant), finalOf, now, ct).ConfigureAwait(false);
            }

            var text = p.GetValue(format) == "json" ? MeteringFormats.ToJson(result) : MeteringFormats.ToCsv(result);
            if (p.GetValue(output) is { } file)
            {
                await MeteringFormats.WriteAtomicallyAsync(file, text, ct).ConfigureAwait(false);
                stdout.WriteLine($"metering report for {period}{(result.Tenant is { } t ? $" (tenant {t})" : "")}: {result.Rows.Count} row(s) written to {file}" +
                                 (result.Complete ? "" : "; the month has not ended, the numbers are so far"));
            }
            else
            {
                stdout.Write(text);
            }

            return PipelineCli.Ok;
        }, e => e is PipelineException { Code: MeteringErrors.MonthInvalid or MeteringErrors.TenantUnknown } ? PipelineCli.ConfigError : null));
        return report;
    }

    /// <summary>The last stage of each pipeline's plan: its own <c>stages:</c>, else engine.yaml's, else Produktion.</summary>
    private static Func<string, string> FinalStages(EngineSettings settings)
    {
        var engineFinal = (settings.Stages ?? Lifecycle.StagePlan.Default).Final.Name;
        var definitions = Directory.Exists(settings.PipelinesDir) ? PipelineDefinitionLoader.LoadFolder(settings.PipelinesDir, checkEnvironment: false) : [];
        var own = definitions.Where(d => d.Stages is not null).ToDictionary(d => d.Name, d => d.Stages!.Final.Name, StringComparer.Ordinal);
        return pipeline => own.GetValueOrDefault(pipeline) ?? engineFinal;
    }
}
