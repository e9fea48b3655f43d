using System.CommandLine;
using Pipeline.Engine.Audit;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Cli;

/// <summary>
/// <c>pipeline ledger [--delivery ID] [--tenant ID] [--verify]</c>: the ledger rows (of one tenant's pipelines with --tenant), each marked with whether the
/// signed log proves it (an unproven row is shown as UNVERIFIED, never as a fact); <c>--verify</c>
/// runs the hash chain and the whole <c>audit verify</c>. Read-only, like the audit commands.
/// </summary>
public static class LedgerCommand
{
    public static Command Create(Option<string?> config, Option<bool> jsonLogs, TextWriter stdout, TextWriter stderr)
    {
        var deliveryOption = new Option<Guid?>("--delivery") { Description = "only this delivery's entries" };
        var verifyOption = new Option<bool>("--verify") { Description = "recompute the hash chain and verify the whole log (as 'audit verify'); report every problem" };
        var keyFiles = new Option<string[]>("--key") { Description = "trusted engine public key (PEM); repeatable (default: the configured keys)", AllowMultipleArgumentsPerToken = true };
        var tenantOption = AuditCommands.TenantOption();
        var ledger = new Command("ledger", "show ledger entries (all, or one delivery's), each checked against the signed log; --verify checks everything");
        ledger.Options.Add(deliveryOption);
        ledger.Options.Add(tenantOption);
        ledger.Options.Add(verifyOption);
        ledger.Options.Add(keyFiles);
        ledger.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            await using var session = await AuditCommands.OpenSession(p.GetValue(config), p.GetValue(jsonLogs), p.GetValue(keyFiles) ?? [], ct).ConfigureAwait(false);
            var scope = AuditScope.FromOption(session.Settings.Tenants, p.GetValue(tenantOption));
            if (p.GetValue(verifyOption))
            {
                var chain = await session.Ledger.VerifyChainAsync(ct).ConfigureAwait(false);
                // The chain and the log are one for all tenants: --verify checks all of it (problem details only without --tenant).
                var result = await session.Audit.VerifyLogAsync(null, scope, ct).ConfigureAwait(false);
                if (chain is null && result.Ok)
                {
                    stdout.WriteLine($"ledger chain intact and every entry proven by the signed log ({result.LedgerEntriesChecked} entries, {result.TreeSize} log entries)");
                    return PipelineCli.Ok;
                }

                if (chain is not null) stderr.WriteLine(scope.All ? $"LEDGER-TAMPERED: {chain}" : "LEDGER-TAMPERED: the hash chain is broken; details only without --tenant");
                foreach (var problem in result.Problems) stderr.WriteLine(problem.ToString());
                return PipelineCli.Rejected;
            }

            var rows = await LedgerView.ReadCheckedAsync(session.Ledger, session.Audit, p.GetValue(deliveryOption), scope, ct).ConfigureAwait(false);
            foreach (var row in rows) Print(row, stdout);
            var bad = rows.Count(r => !r.Verified);
            if (bad > 0)
            {
                stderr.WriteLine($"LEDGER-UNVERIFIED: {bad} of {rows.Count} entries are not proven by the signed log; run 'pipeline audit verify'");
                return PipelineCli.Rejected;
            }

            return PipelineCli.Ok;
        }, AuditCommands.NoKeys));
        return ledger;
    }

    private static void Print(CheckedEntry c, TextWriter o)
    {
        var e = c.Entry;
        var r = e.Record;
        o.WriteLine((c.Verified ? "  " : "  UNVERIFIED ") +
                    $"#{e.Sequence} {e.RecordedAt:yyyy-MM-ddTHH:mm:ss.ffffffZ} {r.Pipeline} {r.DeliveryId} {r.Stage} {(r.Verdict == Verdict.Passed ? "passed" : "failed")}" +
                    (r.ReasonCode is null ? "" : $" {r.ReasonCode}") + $" [{c.Proof}] hash={e.EntryHash} prev={e.PreviousHash}");
    }
}
