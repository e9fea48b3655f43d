using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// The auditor page in headless Chromium against the running API: the auditor types the token and
/// a digest or tag; the page draws the delivery's stages with their verdicts and checks. Screenshots
/// are kept as test artifacts (TestContext work folder, attached to the test result).
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class AuditPageBrowserTests : DeliveryFixture
{
    private AuditApiTests.Running _api = null!;
    private HeadlessChromium _browser = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _api = await AuditApiTests.StartAsync(Harness);
        _browser = await HeadlessChromium.StartAsync();
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        if (_api is not null) await _api.DisposeAsync();
    }

    private async Task TypeAndTrace(string token, string query)
    {
        await _browser.NavigateAsync(new Uri(_api.BaseUrl, "/").ToString());
        await _browser.EvaluateAsync($$"""
            (() => {
              document.getElementById('token').value = {{JsonSerializer.Serialize(token)}};
              document.getElementById('query').value = {{JsonSerializer.Serialize(query)}};
              document.getElementById('trace').click();
            })()
            """);
        await _browser.WaitForAsync("document.body.dataset.rendered === 'true' || document.body.dataset.rendered === 'error'", "the page to render the answer");
    }

    private async Task<List<(string Stage, string Verdict, string Ok, string Text, string Checks)>> Boxes()
    {
        var json = await _browser.EvaluateAsync("""
            JSON.stringify(Array.from(document.querySelectorAll('.delivery .stage')).map(e => ({
              stage: e.dataset.stage, verdict: e.dataset.verdict, ok: e.dataset.ok || '', text: e.innerText,
              checks: Array.from(e.querySelectorAll('.check')).map(c => c.dataset.check + '=' + c.dataset.ok).join(' ') })))
            """);
        return JsonNode.Parse(json!.GetValue<string>())!.AsArray()
            .Select(b => (b!["stage"]!.GetValue<string>(), b["verdict"]!.GetValue<string>(), b["ok"]!.GetValue<string>(), b["text"]!.GetValue<string>(), b["checks"]!.GetValue<string>()))
            .ToList();
    }

    private async Task<string> Screenshot(string name)
    {
        var png = await _browser.ScreenshotAsync();
        Assert.That(png.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "a PNG");
        var dir = Path.Combine(TestContext.CurrentContext.WorkDirectory, "artifacts", "audit-page");
        Directory.CreateDirectory(dir);
        var file = Path.Combine(dir, name);
        await File.WriteAllBytesAsync(file, png);
        TestContext.AddTestAttachment(file, "auditor page screenshot");
        TestContext.Out.WriteLine($"screenshot: {file}");
        return file;
    }

    [Test]
    public async Task The_accepted_delivery_is_drawn_as_six_green_stages_with_signer_and_every_check()
    {
        await TypeAndTrace(_api.Token, _api.Image);
        var boxes = await Boxes();
        Assert.That(boxes.Select(b => (b.Stage, b.Verdict, b.Ok)), Is.EqualTo(new[]
        {
            ("fetch", "passed", "true"), ("verify", "passed", "true"), ("scan", "passed", "true"),
            ("publish", "passed", "true"), ("build", "passed", "true"), ("push", "passed", "true"),
        }));
        Assert.That(boxes.Select(b => b.Checks), Is.All.EqualTo("signature=true inclusion=true links=true"));
        Assert.That(boxes[1].Text, Does.Contain("Certified Release Key"), "the verify box names the tag signer");
        Assert.That(boxes[5].Text, Does.Contain(_api.Digest[..23]), "the push box shows the image digest");
        Assert.That(await _browser.EvaluateAsync("document.querySelector('.delivery h2').innerText"), Is.Not.Null);
        Assert.That((await _browser.EvaluateAsync("document.querySelector('.delivery h2').innerText"))!.GetValue<string>(), Does.Contain("all stages passed").And.Contain("chain verified"));
        Assert.That((await _browser.EvaluateAsync("getComputedStyle(document.querySelector('.stage.passed')).borderTopColor"))!.GetValue<string>(), Is.EqualTo("rgb(31, 122, 58)"), "passed is green");

        // The token stays in this tab: in sessionStorage, never in the address.
        Assert.That((await _browser.EvaluateAsync("sessionStorage.getItem('pipeline-audit-token')"))!.GetValue<string>(), Is.EqualTo(_api.Token));
        Assert.That((await _browser.EvaluateAsync("location.href"))!.GetValue<string>(), Does.Not.Contain(_api.Token).And.Not.Contain(Uri.EscapeDataString(_api.Token)));
        Assert.That((await _browser.EvaluateAsync("localStorage.length"))!.GetValue<int>(), Is.Zero);
        await Screenshot("accepted-delivery.png");
    }

    [Test]
    public async Task The_rejected_delivery_is_drawn_red_at_verify_with_its_reason_and_later_stages_not_reached()
    {
        await TypeAndTrace(_api.Token, "v1.0.1");
        var boxes = await Boxes();
        Assert.That(boxes.Select(b => (b.Stage, b.Verdict)), Is.EqualTo(new[]
        {
            ("fetch", "passed"), ("verify", "failed"), ("scan", "not-reached"), ("publish", "not-reached"), ("build", "not-reached"), ("push", "not-reached"),
        }));
        Assert.That(boxes[1].Text, Does.Contain("CHK-SSH-005"));
        Assert.That((await _browser.EvaluateAsync("document.querySelector('.delivery h2').innerText"))!.GetValue<string>(), Does.Contain("rejected at verify").And.Contain("chain verified"),
            "a rejection is a verdict; the chain recording it is still intact");
        Assert.That(boxes[1].Checks, Is.EqualTo("signature=true inclusion=true links=true"), "the failure is itself signed and logged");
        Assert.That((await _browser.EvaluateAsync("getComputedStyle(document.querySelector('.stage.failed')).borderTopColor"))!.GetValue<string>(), Is.EqualTo("rgb(179, 38, 30)"), "failed is red");
        await Screenshot("rejected-delivery.png");
    }

    [Test]
    public async Task A_wrong_token_shows_the_refusal_and_draws_nothing()
    {
        await TypeAndTrace("not-the-token", _api.Image);
        Assert.That(await Boxes(), Is.Empty);
        Assert.That((await _browser.EvaluateAsync("document.getElementById('status').innerText"))!.GetValue<string>(), Does.StartWith("API-BAD-TOKEN:"));
        await Screenshot("wrong-token.png");
    }
}
