using System.Net;
using Pipeline.Registry.Model;

namespace Pipeline.Registry.Distribution;

public sealed partial class RegistryClient
{
    /// <summary>
    /// <c>DELETE /v2/&lt;repo&gt;/manifests/&lt;digest&gt;</c>: removes the manifest from the repository, and
    /// with it every tag naming it (registries without tag deletion, e.g. distribution 2.8, only
    /// delete by digest). Blobs stay until the registry's garbage collection. Returns false when the
    /// manifest was not there (404). Needs a registry with deletes enabled.
    /// </summary>
    public async Task<bool> DeleteManifestAsync(string repository, Digest digest, CancellationToken cancellationToken = default)
    {
        References.ValidateRepository(repository);
        ArgumentNullException.ThrowIfNull(digest);
        using var response = await SendAsync("REG-MANIFEST-005", "Manifest delete",
            () => new HttpRequestMessage(HttpMethod.Delete, Url($"v2/{repository}/manifests/{digest}")), cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await EnsureSuccessAsync(response, "REG-MANIFEST-005", "Manifest delete", cancellationToken).ConfigureAwait(false);
        return true;
    }
}
