using Docker.DotNet;
using Docker.DotNet.Models;
using Pipeline.Engine.Deploy.Docker;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Images;
using Pipeline.Registry.Layers;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Deploy;

/// <summary>
/// Tiny images for the docker stage tests, built by the engine's own code from the host's static
/// busybox (no Docker, no internet) and pushed to the local registry; referenced by digest.
/// </summary>
internal static class DockerTestImages
{
    public const string User = "10001:10001";

    /// <summary>Builds a busybox image (<c>/bin/busybox</c>, <c>/bin/sh</c>) with the given user and labels, pushes it, and returns <c>registry/repo@sha256:…</c>.</summary>
    public static async Task<string> PushBusyboxAsync(string registry, string work, string repository, string? user, IReadOnlyDictionary<string, string>? labels = null, IReadOnlyList<string>? healthcheck = null)
    {
        TestServices.RequireFile("/bin/busybox", "busybox-static");
        var rootfs = Path.Combine(work, "rootfs-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(rootfs, "bin"));
        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "sh"));
        var store = new BlobStore(Path.Combine(work, "blobs"));
        var settings = new ImageSettings
        {
            Created = DateTimeOffset.UnixEpoch,
            Env = new Dictionary<string, string> { ["PATH"] = "/bin" },
            User = user,
            Labels = labels,
            Cmd = ["/bin/sh"],
            Healthcheck = healthcheck,
        };
        var image = await ScratchBaseBuilder.BuildAsync(rootfs, store, settings, DateTimeOffset.UnixEpoch);
        using var client = new RegistryClient(RegistryEndpoint.Parse(registry));
        await client.PushImageAsync(repository, image.ManifestDigest.ToString(), image, store);
        return $"{registry}/{repository}@{image.ManifestDigest}";
    }

    public static DockerClient Client(string endpoint) => new DockerClientConfiguration(new Uri(endpoint)).CreateClient();

    /// <summary>Containers (any state) carrying <c>pipeline.delivery=<paramref name="deliveryId"/></c>, asked of the engine directly.</summary>
    public static async Task<IList<ContainerListResponse>> ContainersOf(DockerClient client, string deliveryId) =>
        await client.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"pipeline.delivery={deliveryId}"] = true } },
        });

    /// <summary>Networks carrying <c>pipeline.delivery=<paramref name="deliveryId"/></c>.</summary>
    public static async Task<IList<NetworkResponse>> NetworksOf(DockerClient client, string deliveryId) =>
        await client.Networks.ListNetworksAsync(new NetworksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"pipeline.delivery={deliveryId}"] = true } },
        });

    public static DockerStageSettings Settings(string endpoint, string registry) => new()
    {
        Endpoint = endpoint,
        Registry = registry,
        User = User,
        MemoryBytes = 64L * 1024 * 1024,
        Cpus = 0.5,
        PidsLimit = 64,
        HealthTimeout = TimeSpan.FromSeconds(30),
        TestTimeout = TimeSpan.FromSeconds(60),
        PollInterval = TimeSpan.FromMilliseconds(100),
        HealthInterval = TimeSpan.FromMilliseconds(300),
        EngineTimeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>A shell command line as the argv of <c>/bin/sh -c</c>.</summary>
    public static string[] Sh(string script) => ["/bin/sh", "-c", script];

    /// <summary>A healthcheck: an HTTP GET of <paramref name="path"/> on loopback answers 200.</summary>
    public static string[] HttpHealth(int port, string path) =>
        Sh($"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc 127.0.0.1 {port} | /bin/busybox grep -q '200 OK'");

    /// <summary>Removes the tests' image references from the shared engine (best effort, with the docker CLI; the layers are shared by all of them).</summary>
    public static void RemoveImages(string endpoint, params string[] references)
    {
        foreach (var reference in references.Where(r => r.Length > 0))
            Shell.Run("docker", ["-H", endpoint, "rmi", reference]);
    }
}
