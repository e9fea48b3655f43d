using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Api;

/// <summary>
/// Debian's <c>chromium</c>, headless, driven over the DevTools protocol with a tiny client on
/// <see cref="ClientWebSocket"/> (no browser-automation packages): navigate, evaluate, screenshot.
/// </summary>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly TempDir _profile;
    private readonly ClientWebSocket _socket = new();
    private int _nextId;

    private HeadlessChromium(Process process, TempDir profile)
    {
        _process = process;
        _profile = profile;
    }

    public static async Task<HeadlessChromium> StartAsync(int width = 1280, int height = 900)
    {
        const string exe = "chromium";
        if (!Shell.Exists(exe)) Assert.Fail("Debian's 'chromium' is not installed: run scripts/services.sh (it installs it when missing)");
        var profile = new TempDir("pipeline-chromium-");
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
                     "--user-data-dir=" + profile.Path, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                     $"--window-size={width},{height}", "about:blank",
                 })
            psi.ArgumentList.Add(a);
        var process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var browser = new HeadlessChromium(process, profile);
        try
        {
            // Chromium writes the port it chose to DevToolsActivePort in the profile folder.
            var portFile = Path.Combine(profile.Path, "DevToolsActivePort");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!File.Exists(portFile) || File.ReadAllText(portFile).Split('\n').Length < 2)
            {
                if (process.HasExited) Assert.Fail($"chromium exited with {process.ExitCode} before opening its DevTools port");
                if (DateTime.UtcNow > deadline) Assert.Fail("chromium did not open its DevTools port within 60 s");
                await Task.Delay(100);
            }

            var port = int.Parse(File.ReadAllText(portFile).Split('\n')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            using var http = new HttpClient();
            var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            var page = targets.First(t => t!["type"]!.GetValue<string>() == "page")!;
            await browser._socket.ConnectAsync(new Uri(page["webSocketDebuggerUrl"]!.GetValue<string>()), CancellationToken.None);
            await browser.SendAsync("Page.enable");
            await browser.SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject { ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = false });
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends one command and returns its <c>result</c> (events in between are skipped); a protocol error fails the test.</summary>
    public async Task<JsonNode> SendAsync(string method, JsonObject? parameters = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var buffer = new byte[64 * 1024];
        while (true)
        {
            using var ms = new MemoryStream();
            WebSocketReceiveResult r;
            do
            {
                r = await _socket.ReceiveAsync(buffer, timeout.Token);
                ms.Write(buffer, 0, r.Count);
            } while (!r.EndOfMessage);

            var node = JsonNode.Parse(ms.ToArray())!;
            if (node["id"]?.GetValue<int>() != id) continue;
            if (node["error"] is { } error) Assert.Fail($"CDP {method} failed: {error.ToJsonString()}");
            return node["result"]!;
        }
    }

    /// <summary>Evaluates a JavaScript expression in the page and returns its value (awaiting promises).</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true });
        if (result["exceptionDetails"] is { } ex) Assert.Fail($"page script failed: {ex.ToJsonString()}");
        return result["result"]!["value"];
    }

    public async Task NavigateAsync(string url)
    {
        await SendAsync("Page.navigate", new JsonObject { ["url"] = url });
        await WaitForAsync("document.readyState === 'complete' && !!document.getElementById('token') && location.href === " + JsonSerializer.Serialize(url), "the page to load");
    }

    /// <summary>Polls <paramref name="condition"/> (a JavaScript boolean expression) for up to 30 s.</summary>
    public async Task WaitForAsync(string condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if ((await EvaluateAsync($"(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"))?.GetValue<bool>() == true) return;
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    public async Task<byte[]> ScreenshotAsync()
    {
        var result = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = false });
        return Convert.FromBase64String(result["data"]!.GetValue<string>());
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open) await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
        }
        catch (WebSocketException)
        {
        }

        _socket.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _profile.Dispose();
    }
}
