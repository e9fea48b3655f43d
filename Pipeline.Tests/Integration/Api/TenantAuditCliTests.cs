using Pipeline.Engine.Cli;
using static Pipeline.Tests.Integration.Api.TwoTenants;

namespace Pipeline.Tests.Integration.Api;

/// <summary>The audit commands with <c>--tenant</c> over the same two tenants (<see cref="TenantAuditTests"/>).</summary>
public partial class TenantAuditTests
{
    private static async Task<(int Rc, string Out, string Err)> Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var rc = await PipelineCli.RunAsync(args, o, e);
        return (rc, o.ToString(), e.ToString());
    }

    private string Config => _t.A.ConfigPath;

    [Test]
    public async Task Cli_audit_trace_with_tenant_shows_only_that_tenant_and_another_tenants_delivery_as_not_found()
    {
        var (rc, output, err) = await Cli("audit", "trace", _t.ImageA, "--tenant", TenantA, "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain($"delivery {_t.DeliveryA:D}  pipeline {_t.A.Name}").And.Contain("CHAIN VERIFIED"));

        // The shared tag: one delivery with --tenant, both without.
        (rc, output, err) = await Cli("audit", "trace", "v1.0.0", "--tenant", TenantA, "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain(_t.A.Name));
        AssertNoneOf(_t.OnlyB, output + err, "trace --tenant land-a");
        (rc, output, _) = await Cli("audit", "trace", "v1.0.0", "--config", Config);
        Assert.That(rc, Is.EqualTo(0));
        Assert.That(output, Does.Contain(_t.A.Name).And.Contain(_t.B.Name));

        // Another tenant's delivery: the same exit code and output as one that does not exist.
        var none = Guid.NewGuid().ToString("D");
        var hidden = await Cli("audit", "trace", _t.DeliveryB.ToString("D"), "--tenant", TenantA, "--config", Config);
        var missing = await Cli("audit", "trace", none, "--tenant", TenantA, "--config", Config);
        Assert.That((hidden.Rc, hidden.Err), Is.EqualTo((1, $"AUDIT-NOT-FOUND: nothing in the log matches '{_t.DeliveryB:D}'{Environment.NewLine}")));
        Assert.That((missing.Rc, missing.Out, missing.Err.Replace(none, "Q")), Is.EqualTo((hidden.Rc, hidden.Out, hidden.Err.Replace(_t.DeliveryB.ToString("D"), "Q"))));
    }

    [Test]
    public async Task Cli_audit_query_with_tenant_lists_only_that_tenants_entries()
    {
        var (rc, output, err) = await Cli("audit", "query", "--tenant", TenantA, "--limit", "1000", "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        var rows = output.Split('\n').Where(l => l.StartsWith('#')).ToList();
        Assert.That(rows, Is.Not.Empty.And.All.Contain($" {_t.A.Name} "));
        AssertNoneOf(_t.OnlyB, output, "query --tenant land-a");
        (rc, output, _) = await Cli("audit", "query", "--tenant", TenantA, "--pipeline", _t.B.Name, "--config", Config);
        Assert.That((rc, output.Trim()), Is.EqualTo((0, "0 entries (signed values; the filters use lookup columns that 'audit verify' checks)")));
        (rc, output, _) = await Cli("audit", "query", "--limit", "1000", "--config", Config);
        Assert.That(output, Does.Contain(_t.A.Name).And.Contain(_t.B.Name), "without --tenant: every tenant");
    }

    [Test]
    public async Task Cli_audit_export_with_tenant_writes_a_bundle_with_nothing_of_the_other_tenant_that_verifies_offline()
    {
        var file = Path.Combine(_t.A.Root, "land-a-bundle.json");
        var (rc, output, err) = await Cli("audit", "export", _t.ImageA, "--tenant", TenantA, "-o", file, "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("tenant land-a"));
        var layers = AllLayers(File.ReadAllBytes(file));
        Assert.That(layers, Does.Contain(_t.A.Name));
        AssertNoneOf(_t.OnlyB, layers, "export --tenant land-a");

        // Offline, no configuration or database: the tenant bundle verifies (its proofs are the global log's).
        (rc, output, err) = await Cli("audit", "verify-bundle", file, "--key", _t.PublicKey, "--origin", "tenants.example/ledger");
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("bundle verified: OK"));

        // The other tenant's image is not found for land-a; land-b's own bundle holds nothing of land-a.
        (rc, _, err) = await Cli("audit", "export", _t.ImageB, "--tenant", TenantA, "-o", Path.Combine(_t.A.Root, "none.json"), "--config", Config);
        Assert.That((rc, err), Is.EqualTo((PipelineCli.Rejected, $"AUDIT-NOT-FOUND: no log entry names '{_t.ImageB}'{Environment.NewLine}")), "exactly as for an image never delivered");
        Assert.That(File.Exists(Path.Combine(_t.A.Root, "none.json")), Is.False);
        var never = "sha256:" + new string('e', 64);
        (rc, _, err) = await Cli("audit", "export", never, "--tenant", TenantA, "-o", Path.Combine(_t.A.Root, "none.json"), "--config", Config);
        Assert.That((rc, err), Is.EqualTo((PipelineCli.Rejected, $"AUDIT-NOT-FOUND: no log entry names '{never}'{Environment.NewLine}")));
        var fileB = Path.Combine(_t.A.Root, "land-b-bundle.json");
        (rc, _, err) = await Cli("audit", "export", _t.ImageB, "--tenant", TenantB, "-o", fileB, "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        AssertNoneOf(_t.OnlyA, AllLayers(File.ReadAllBytes(fileB)), "export --tenant land-b");
    }

    [Test]
    public async Task Cli_ledger_with_tenant_shows_only_that_tenants_rows()
    {
        var (rc, output, err) = await Cli("ledger", "--tenant", TenantA, "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        var rows = output.Split('\n').Where(l => l.StartsWith("  #", StringComparison.Ordinal)).ToList();
        Assert.That(rows, Is.Not.Empty.And.All.Contain($" {_t.A.Name} {_t.DeliveryA:D} ").And.All.Contain("[signed #"));
        AssertNoneOf(_t.OnlyB, output, "ledger --tenant land-a");
        (rc, output, _) = await Cli("ledger", "--tenant", TenantA, "--delivery", _t.DeliveryB.ToString("D"), "--config", Config);
        Assert.That((rc, output), Is.EqualTo((0, "")), "another tenant's delivery has no rows for land-a");
        (rc, output, _) = await Cli("ledger", "--config", Config);
        Assert.That(output, Does.Contain(_t.DeliveryA.ToString("D")).And.Contain(_t.DeliveryB.ToString("D")));

        // --verify checks the one chain and log for all tenants, naming nobody's content.
        (rc, output, err) = await Cli("ledger", "--verify", "--tenant", TenantA, "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        AssertNoneOf(_t.OnlyA.Concat(_t.OnlyB).ToList(), (output + err).Replace(_t.A.Root, "ROOT", StringComparison.Ordinal), "ledger --verify");
    }

    [Test]
    public async Task Cli_audit_verify_checkpoint_and_serve_are_global_and_name_no_tenants_content()
    {
        var (rc, output, err) = await Cli("audit", "verify", "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.Contain("log verified: OK"));
        // (The kept checkpoint's path is in the test's folder, which is named after pipeline A.)
        AssertNoneOf(_t.OnlyA.Concat(_t.OnlyB).ToList(), (output + err).Replace(_t.A.Root, "ROOT", StringComparison.Ordinal), "audit verify");
        (rc, output, err) = await Cli("audit", "checkpoint", "--config", Config);
        Assert.That(rc, Is.EqualTo(0), err);
        Assert.That(output, Does.StartWith("tenants.example/ledger\n"));
        AssertNoneOf(_t.OnlyA.Concat(_t.OnlyB).ToList(), output, "audit checkpoint");
        // 'audit serve' is the API of the API tests above: every answer is scoped by the caller's token.
        Assert.That(ScopingCases.Keys, Does.Contain("/api/export/{**image}"));
    }

    [Test]
    public void A_reload_validates_token_scopes_against_the_tenants_and_takes_a_changed_scope()
    {
        var file = _t.Engine.Settings.Audit.ApiTokensFile!;
        var original = File.ReadAllText(file);
        try
        {
            // A line without a scope while tenants are configured: the reload is refused naming the line.
            File.AppendAllText(file, new string('a', 64) + " forgot-the-scope\n");
            var (snapshot, errors) = Pipeline.Engine.Hosting.ConfigWatcher.Validate(_t.Engine.Settings);
            Assert.That(snapshot, Is.Null);
            Assert.That(errors.Single(), Does.StartWith($"API-TOKEN-SCOPE: {file} line 5: the token has no scope"));

            // The land-a auditor moved to land-b: the running token set takes the new scope.
            File.WriteAllText(file, original.Replace($"tenants={TenantA}", $"tenants={TenantB}", StringComparison.Ordinal));
            (snapshot, errors) = Pipeline.Engine.Hosting.ConfigWatcher.Validate(_t.Engine.Settings);
            Assert.That(errors, Is.Empty);
            var live = Pipeline.Engine.Api.AuditApiTokens.Parse(original, file, _t.Engine.Settings.Tenants);
            Assert.That(live.Find(_t.TokenA)!.Scope.Tenants, Is.EqualTo(new[] { TenantA }));
            live.Replace(snapshot!.AuditTokens!);
            Assert.That(live.Find(_t.TokenA)!.Scope.Tenants, Is.EqualTo(new[] { TenantB }));
        }
        finally
        {
            File.WriteAllText(file, original);
        }
    }

    [TestCase("audit", "trace", "v1.0.0")]
    [TestCase("audit", "export", "sha256:0000000000000000000000000000000000000000000000000000000000000000", "-o", "x.json")]
    [TestCase("audit", "query")]
    [TestCase("ledger")]
    public async Task Cli_an_unknown_tenant_is_a_usage_error_naming_the_configured_tenants(params string[] command)
    {
        var (rc, output, err) = await Cli([.. command, "--tenant", "land-x", "--config", Config]);
        Assert.That(rc, Is.EqualTo(PipelineCli.ConfigError), err);
        Assert.That(err, Does.StartWith("TENANT-UNKNOWN: 'land-x' is not a tenant; engine.yaml 'tenants:' configures land-a, land-b"));
        Assert.That(output, Is.Empty);
    }
}
