using Pipeline.Engine.Configuration;

namespace Pipeline.Engine.Notifications;

/// <summary>The events a webhook can subscribe to.</summary>
public static class NotificationEvents
{
    public const string ApprovalPending = "approval-pending";
    public const string StageFailed = "stage-failed";
    public const string Promoted = "promoted";
    public const string Rejected = "rejected";
    public const string Withdrawn = "withdrawn";

    public static IReadOnlyList<string> All { get; } = [ApprovalPending, StageFailed, Promoted, Rejected, Withdrawn];
}

/// <summary>One webhook: where to POST, the file holding the HMAC secret, which events.</summary>
/// <param name="Name">A stable name for logs and the delivery cursor (the URL's host and path, or <c>name:</c>).</param>
public sealed record WebhookSettings(string Name, Uri Url, string SecretFile, IReadOnlyList<string> Events)
{
    public override string ToString() => $"{Name} ({Url.GetLeftPart(UriPartial.Path)})";
}

/// <summary>engine.yaml <c>notifications:</c>.</summary>
/// <param name="PollInterval">How often the notifier looks for new statements in the log.</param>
/// <param name="MaxAttempts">Attempts per event (first try plus retries with exponential backoff).</param>
public sealed record NotificationSettings(IReadOnlyList<WebhookSettings> Webhooks, TimeSpan PollInterval, int MaxAttempts)
{
    public static NotificationSettings None { get; } = new([], TimeSpan.FromSeconds(10), 5);

    /// <summary>
    /// Parses <c>notifications: { pollSeconds, attempts, webhooks: [ { name, url, secretFile, events: [...] } ] }</c>,
    /// adding every problem with file and line to the reader's errors.
    /// </summary>
    public static NotificationSettings Parse(MappingReader root, string baseDir)
    {
        if (!root.Has("notifications") || root.Mapping("notifications", required: true) is not { } n) return None;
        var poll = TimeSpan.FromSeconds(n.Int("pollSeconds", 1, 3600) ?? 10);
        var attempts = n.Int("attempts", 1, 20) ?? 5;
        var hooks = new List<WebhookSettings>();
        foreach (var w in n.MappingList("webhooks", required: true))
        {
            var url = EngineSettingsLoader.HttpUrl(w, "url");
            if (url is not null && !string.IsNullOrEmpty(url.Query))
                w.KeyError("url", "a webhook 'url' takes no query string (no secrets in URLs); the secret goes into 'secretFile'");
            var secret = EngineSettingsLoader.ResolveFile(w, "secretFile", baseDir, required: true);
            if (secret is not null && File.Exists(secret) && File.ReadAllText(secret).Trim().Length < 16)
                w.KeyError("secretFile", $"the webhook secret in '{secret}' is shorter than 16 characters", "e.g. openssl rand -hex 32 > FILE");
            var events = w.StringList("events", required: true);
            foreach (var e in events.Where(e => !NotificationEvents.All.Contains(e)))
                w.KeyError("events", $"unknown event '{e}'", "events: " + string.Join(", ", NotificationEvents.All));
            var name = w.String("name") ?? (url is null ? "" : url.Host + url.AbsolutePath.TrimEnd('/'));
            if (hooks.Any(h => h.Name == name)) w.KeyError("name", $"two webhooks are named '{name}'; give each a distinct 'name'");
            w.Done();
            if (url is not null && secret is not null) hooks.Add(new WebhookSettings(name, url, secret, events.Distinct().ToList()));
        }

        n.Done();
        return new NotificationSettings(hooks, poll, attempts);
    }
}
