using System.Text.Json;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Integration.Api.PortalSetup;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// The portal page in headless Chromium against the running portal: a Verfahrensverantwortliche
/// signs in with her token, sees exactly what she approves (digests, stage result, scan verdict,
/// signer, SBOM), approves with a comment, and the board moves the delivery into Abnahme; the
/// auditor page then draws the lifecycle after the push. Screenshots are kept as test artifacts
/// (TestContext work folder, artifacts/portal-page, attached to the test result).
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class PortalPageBrowserTests : DeliveryFixture
{
    private Running _p = null!;
    private HeadlessChromium _browser = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _p = await StartAsync(Harness);
        var (status, body) = await _p.Send(HttpMethod.Post, $"/api/portal/deliveries/{_p.DeliveryId}/promote", Sam, new { stage = "Abnahme" });
        Assert.That(status, Is.EqualTo(201), body?.ToJsonString());
        _browser = await HeadlessChromium.StartAsync(1400, 1000);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        if (_p is not null) await _p.DisposeAsync();
    }

    private async Task<string> Text(string js) => (await _browser.EvaluateAsync(js))!.GetValue<string>();

    private async Task Screenshot(string name)
    {
        var png = await _browser.ScreenshotAsync();
        Assert.That(png.AsSpan(0, 4).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47 }), "a PNG");
        var dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "artifacts", "portal-page");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, name);
        await File.WriteAllBytesAsync(file, png);
        TestContext.AddTestAttachment(file, "portal page screenshot");
        TestContext.Out.WriteLine($"screenshot: {file}");
    }

    private async Task SignIn(string person)
    {
        await _browser.NavigateAsync(new Uri(_p.BaseUrl, "/portal").ToString());
        await _browser.EvaluateAsync($$"""
            (() => {
              document.getElementById('token').value = {{JsonSerializer.Serialize(_p.Tokens[person])}};
              document.getElementById('signin').click();
            })()
            """);
        await _browser.WaitForAsync("document.body.dataset.rendered === 'true' || document.body.dataset.rendered === 'error'", "the portal to render");
    }

    [Test]
    public async Task The_approver_sees_what_she_approves_approves_with_a_comment_and_the_delivery_moves_into_Abnahme()
    {
        await SignIn(Vera);
        Assert.That(await Text("document.getElementById('me').innerText"), Does.Contain(Vera));
        var card = $"document.querySelector('.card[data-delivery=\"{_p.DeliveryId}\"]')";
        Assert.That(await Text(card + ".dataset.stage"), Is.EqualTo("Abnahme"));
        string Field(string f) => card + $".querySelector('[data-field=\"{f}\"]').innerText";
        Assert.That(await Text(Field("digests")), Is.EqualTo(_p.Digest));
        Assert.That(await Text(Field("stage result")), Does.StartWith("intake pushed · sha256:"));
        Assert.That(await Text(Field("scan")), Does.StartWith("passed"));
        Assert.That(await Text(Field("signer")), Does.Contain("Certified Release Key"));
        Assert.That(await Text(Field("SBOM")), Does.Contain("@sha256:"));
        Assert.That(await Text(Field("requested by")), Does.Contain(Sam));
        await _browser.EvaluateAsync(card + ".querySelector('textarea').value = 'Abnahmetests bestanden'");
        await Screenshot("pending-approval.png");

        await _browser.EvaluateAsync(card + ".querySelector('button.approve').click()");
        await _browser.WaitForAsync("document.getElementById('status').innerText.startsWith('Approved') || document.getElementById('status').className === 'error'", "the approval");
        Assert.That(await Text("document.getElementById('status').innerText"), Is.EqualTo($"Approved: v1.0.0 is in Abnahme."));
        await _browser.WaitForAsync("document.body.dataset.rendered === 'true'", "the board to refresh");
        var row = $"document.querySelector('tr[data-delivery=\"{_p.DeliveryId}\"]')";
        Assert.That(await Text(row + ".dataset.stage"), Is.EqualTo("Abnahme"));
        Assert.That(await Text(row + ".querySelector('td.here').innerText"), Does.Contain("here"));
        Assert.That(await Text("sessionStorage.getItem('pipeline-portal-token')"), Is.EqualTo(_p.Tokens[Vera]), "the token stays in this tab");
        Assert.That(await Text("location.href"), Does.Not.Contain(_p.Tokens[Vera]).And.Not.Contain(Uri.EscapeDataString(_p.Tokens[Vera])));
        await Screenshot("board-after-approval.png");

        var approvals = await _p.Engine.Lifecycle.GetApprovalsAsync(Pipeline.Engine.Approvals.Actor.Engine, _p.DeliveryId, default);
        Assert.That(approvals.Select(a => (a.Approver, a.Comment, a.Channel)), Is.EqualTo(new[] { (Vera, (string?)"Abnahmetests bestanden", "portal") }));

        // The auditor page draws the chain on past the push: request, Freigabe and promotion into Abnahme
        // (after a checkpoint, as 'pipeline audit checkpoint' or the daemon signs one).
        await _p.Engine.Ledger.CheckpointAsync(default);
        await _browser.NavigateAsync(new Uri(_p.BaseUrl, "/").ToString());
        await _browser.EvaluateAsync($$"""
            (() => {
              document.getElementById('token').value = {{JsonSerializer.Serialize(_p.AuditorToken)}};
              document.getElementById('query').value = {{JsonSerializer.Serialize(_p.DeliveryId.ToString())}};
              document.getElementById('trace').click();
            })()
            """);
        await _browser.WaitForAsync("document.body.dataset.rendered === 'true' || document.body.dataset.rendered === 'error'", "the trace");
        await Screenshot("trace-through-abnahme.png");
        var steps = await Text("JSON.stringify(Array.from(document.querySelectorAll('.chain.lifecycle .stage')).map(e => e.dataset.stage + '=' + e.dataset.ok + ' ' + Array.from(e.querySelectorAll('.problem')).map(x => x.innerText).join(';')))");
        Assert.That(steps, Does.Contain("request:Abnahme=true").And.Contain("freigabe:Abnahme=true").And.Contain("promotion:Abnahme=true"), steps);
    }

    [Test]
    public async Task A_wrong_token_shows_the_refusal_and_no_board()
    {
        await _browser.NavigateAsync(new Uri(_p.BaseUrl, "/portal").ToString());
        await _browser.EvaluateAsync("(() => { document.getElementById('token').value = 'not-a-token'; document.getElementById('signin').click(); })()");
        await _browser.WaitForAsync("document.body.dataset.rendered === 'error'", "the refusal");
        Assert.That(await Text("document.getElementById('status').innerText"), Does.StartWith("PORTAL-BAD-TOKEN:"));
        Assert.That((await _browser.EvaluateAsync("document.getElementById('board-section').hidden"))!.GetValue<bool>(), Is.True);
    }
}
