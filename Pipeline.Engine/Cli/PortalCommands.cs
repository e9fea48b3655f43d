using System.CommandLine;

namespace Pipeline.Engine.Cli;

/// <summary><c>pipeline portal serve</c>: the portal for approvers and Systempfleger:innen, and the auditors' API, in one host.</summary>
internal static class PortalCommands
{
    public static Command Create(Option<string?> config, Option<bool> jsonLogs, TextWriter stdout, TextWriter stderr)
    {
        var portal = new Command("portal", "the self-service portal: board, Freigaben, promotions, Rücknahme and on-demand passes");
        var urls = new Option<string>("--urls") { Description = "listen URL(s), ';'-separated; loopback only unless --allow-remote", DefaultValueFactory = _ => Api.AuditApiHost.DefaultUrl };
        var allowRemote = new Option<bool>("--allow-remote") { Description = "allow a non-loopback bind (put TLS in front of it)" };
        var serve = new Command("serve", "serve the portal (people from people.file) and the audit API (tokens from audit.apiTokensFile) on one port; webhooks from notifications:");
        serve.Options.Add(urls);
        serve.Options.Add(allowRemote);
        serve.SetAction((p, ct) => PipelineCli.Guard(stderr, async () =>
        {
            Api.AuditApiHost.CheckBind(p.GetValue(urls)!, p.GetValue(allowRemote));
            await using var engine = await PipelineCli.Start(p.GetValue(config), p.GetValue(jsonLogs), ct).ConfigureAwait(false);
            await using var server = await Api.PortalServer.StartAsync(engine, p.GetValue(urls)!, p.GetValue(allowRemote), ct).ConfigureAwait(false);
            stdout.WriteLine($"portal listening on {string.Join(" ", server.Addresses)} (page /portal, auditors /); Ctrl-C stops it");
            try
            {
                await server.WaitForShutdownAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
            }

            return PipelineCli.Ok;
        }, e => e is PipelineException pe && (pe.Code.StartsWith("API-", StringComparison.Ordinal) || pe.Code.StartsWith("PORTAL-", StringComparison.Ordinal)) ? PipelineCli.ConfigError : null));
        portal.Subcommands.Add(serve);
        return portal;
    }
}
