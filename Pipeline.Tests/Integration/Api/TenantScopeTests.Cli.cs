using System.CommandLine;
using System.Text.Json.Nodes;
using Pipeline.Engine.Cli;
using static Pipeline.Tests.Integration.Api.TenantScopeSetup;

namespace Pipeline.Tests.Integration.Api;

/// <summary>The lifecycle commands run with a person's token: C1 (land-a) and D1, BX (land-b).</summary>
public partial class TenantScopeTests
{
    private async Task<(int Rc, string Out, string Err)> Cli(string person, params string[] args)
    {
        var file = Path.Combine(_t.Portal.Scenario.Root, "token-" + person.Split(' ')[0]);
        await File.WriteAllTextAsync(file, _t.Tokens[person]);
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync([.. args, "--token-file", file, "--config", _t.Portal.Scenario.ConfigPath], o, e);
        return (rc, o.ToString(), e.ToString());
    }

    /// <summary>The command naming another tenant's delivery fails exactly as for an unknown id: exit code, output and LC-UNKNOWN-DELIVERY.</summary>
    private async Task CliSameAsUnknown(string person, Guid real, params string[] args)
    {
        var unknown = Guid.NewGuid().ToString();
        var (rc1, out1, err1) = await Cli(person, [.. args.Select(a => a == "{x}" ? real.ToString() : a)]);
        var (rc2, out2, err2) = await Cli(person, [.. args.Select(a => a == "{x}" ? unknown : a)]);
        var what = $"{person}: pipeline {string.Join(' ', args)} with another tenant's {real}";
        Assert.That((rc1, err1), Is.EqualTo((PipelineCli.Rejected, $"LC-UNKNOWN-DELIVERY: no delivery {real}; 'pipeline status' lists the deliveries{Environment.NewLine}")), what);
        Assert.That((rc1, out1, err1.Replace(real.ToString(), "{x}", StringComparison.Ordinal)), Is.EqualTo((rc2, out2, err2.Replace(unknown, "{x}", StringComparison.Ordinal))),
            $"{what} is answered exactly like an unknown id");
    }

    private sealed record CommandCase(string Command, Func<Task> OtherTenant, Func<Task> OwnTenant);

    private List<CommandCase> CommandCases() =>
    [
        new("status", async () =>
        {
            var (rc, output, err) = await Cli(Anja, "status", "--json");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            NothingOfLandB(output, "Anja's status");
            var named = await Cli(Anja, "status", "--json", "--pipeline", _t.B);
            var unknown = await Cli(Anja, "status", "--json", "--pipeline", "no-such-pipeline");
            Assert.That((named.Rc, named.Err, unknown.Rc), Is.EqualTo((PipelineCli.Ok, "", PipelineCli.Ok)), "another tenant's pipeline is no refusal that names it");
            Assert.That((named.Rc, JsonNode.Parse(named.Out)!["pipelines"]!.ToJsonString()), Is.EqualTo((unknown.Rc, JsonNode.Parse(unknown.Out)!["pipelines"]!.ToJsonString())),
                "another tenant's pipeline is shown like an unknown one");
            Assert.That(JsonNode.Parse(named.Out)!["pipelines"]!.AsArray(), Is.Empty);
        }, async () =>
        {
            var (rc, output, _) = await Cli(Anja, "status");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok));
            Assert.That(output, Does.Contain(_t.C1.ToString()));
            (rc, output, _) = await Cli(Bert, "status");
            Assert.That(output, Does.Contain(_t.D1.ToString()).And.Not.Contain(_t.C1.ToString()).And.Not.Contain(_t.C));
        }),
        new("history", async () =>
        {
            await CliSameAsUnknown(Bert, _t.C1, "history", "{x}");
            await CliSameAsUnknown(Anja, _t.BX, "history", "{x}");
            await CliSameAsUnknown(Anja, _t.D1, "history", "{x}");
        }, async () =>
        {
            var (rc, output, err) = await Cli(Anja, "history", _t.C1.ToString());
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            Assert.That(output, Does.Contain("push"));
        }),
        new("promote", async () =>
        {
            await CliSameAsUnknown(Bert, _t.C1, "promote", "{x}", "--to", "Abnahme");
            await CliSameAsUnknown(Anja, _t.D1, "promote", "{x}", "--to", "Abnahme");
            await CliSameAsUnknown(Anja, _t.BX, "promote", "{x}", "--to", "Abnahme");
        }, async () =>
        {
            var (rc, output, err) = await Cli(Anja, "promote", _t.C1.ToString(), "--to", "Abnahme");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            Assert.That(output, Does.Contain("into Abnahme requested by " + Anja));
        }),
        new("approval-statement", async () =>
        {
            await CliSameAsUnknown(Bert, _t.C1, "approval-statement", "{x}", "--stage", "Abnahme");
        }, async () =>
        {
            var (rc, output, err) = await Cli(Alma, "approval-statement", _t.C1.ToString(), "--stage", "Abnahme");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            Assert.That(output, Does.Contain(_t.DigestC));
        }),
        new("approve", async () =>
        {
            await CliSameAsUnknown(Bert, _t.C1, "approve", "{x}", "--stage", "Abnahme", "--comment", "fremd");
        }, async () =>
        {
            var (rc, output, err) = await Cli(Alma, "approve", _t.C1.ToString(), "--stage", "Abnahme", "--digest", _t.DigestC, "--comment", "ok");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            Assert.That(output, Does.Contain("rule complete"));
            (rc, _, err) = await Cli(Anja, "promote", _t.C1.ToString(), "--to", "Produktion");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), "a request to refuse next: " + err);
        }),
        new("reject", async () =>
        {
            await CliSameAsUnknown(Bert, _t.C1, "reject", "{x}", "--stage", "Produktion", "--comment", "fremd");
        }, async () =>
        {
            var (rc, output, err) = await Cli(Alma, "reject", _t.C1.ToString(), "--stage", "Produktion", "--comment", "Abnahmetest fehlgeschlagen");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            Assert.That(output, Does.Contain("refusal into Produktion by " + Alma));
        }),
        new("withdraw", async () =>
        {
            await CliSameAsUnknown(Anja, _t.D1, "withdraw", "{x}", "--reason", "fremd");
            await CliSameAsUnknown(Bert, _t.C1, "withdraw", "{x}", "--reason", "fremd");
        }, async () =>
        {
            var (rc, output, err) = await Cli(Bert, "withdraw", _t.D1.ToString(), "--reason", "Sicherheitslücke");
            Assert.That(rc, Is.EqualTo(PipelineCli.Ok), err);
            Assert.That(output, Does.Contain("withdrawn"));
        }),
    ];

    [Test]
    public void Every_lifecycle_command_has_a_tenant_scoping_case()
    {
        var registered = LifecycleCommands.Create(new Option<string?>("--config"), new Option<bool>("--json-logs"), TextWriter.Null, TextWriter.Null).Select(c => c.Name).Order(StringComparer.Ordinal);
        Assert.That(CommandCases().Select(c => c.Command).Order(StringComparer.Ordinal), Is.EqualTo(registered), "every lifecycle command needs a case in CommandCases");
    }

    [Test]
    public async Task On_every_lifecycle_command_another_tenants_delivery_is_an_unknown_one_and_the_own_tenant_may_act()
    {
        foreach (var c in CommandCases())
        {
            var before = await LedgerCount();
            await c.OtherTenant();
            Assert.That(await LedgerCount(), Is.EqualTo(before), $"{c.Command}: a command across tenants records nothing");
            await c.OwnTenant();
        }
    }
}
