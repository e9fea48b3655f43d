using Pipeline.Registry;
using Pipeline.Registry.Copy;
using Pipeline.Registry.Model;

namespace Pipeline.Engine.Lifecycle;

/// <summary>
/// One image of a withdrawn delivery in one stage it entered: where it is, and what the stage tag
/// goes back to.
/// </summary>
/// <param name="Repository">The image's repository in <paramref name="Stage"/>.</param>
/// <param name="Digest">The withdrawn image's digest.</param>
/// <param name="PreviousTag">The version that held the stage before (highest older version, not withdrawn, that entered this stage), or null.</param>
/// <param name="PreviousDigest">That version's digest of the same image.</param>
/// <param name="SharedWith">Another live delivery with the very same digest (then the manifest stays), or null.</param>
public sealed record Retraction(StageDefinition Stage, string Repository, string Digest, string? PreviousTag, string? PreviousDigest, string? SharedWith);

public sealed partial class PromotionStep
{
    /// <summary>
    /// Takes a withdrawn delivery's images out of the stages it entered: where the stage tag names
    /// the withdrawn digest it is moved back to the previous version's digest (when that version is
    /// still in the stage repository), and then the withdrawn manifest is deleted from the stage
    /// repository, which removes every tag still naming it (the stage tag when there is no previous
    /// version, the version tag). The intake repository and the transparency log keep the image and
    /// its evidence. Idempotent: a second run finds the tag moved and the manifest gone.
    /// </summary>
    /// <returns>Evidence per stage and repository: what was done.</returns>
    /// <exception cref="LifecycleException">LC-WITHDRAW-REGISTRY (transient): a registry failed; nothing is recorded, run the Rücknahme again.</exception>
    public async Task<IReadOnlyDictionary<string, string>> RetractAsync(IReadOnlyList<Retraction> items, CancellationToken ct)
    {
        var evidence = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var host = item.Stage.Registry?.Url.Authority ?? EngineRegistryHost;
            using var client = Client(item.Stage.Registry);
            var key = $"retract.{item.Stage.Name}.{item.Repository}";
            try
            {
                string? current = null;
                try
                {
                    current = (await client.GetManifestAsync(item.Repository, item.Stage.Tag, ct).ConfigureAwait(false)).Digest.ToString();
                }
                catch (RegistryException e) when (e.StatusCode == 404)
                {
                }

                var actions = new List<string>();
                if (current == item.Digest)
                {
                    if (item.PreviousDigest is { } prev && await client.ManifestExistsAsync(item.Repository, Digest.Parse(prev), ct).ConfigureAwait(false))
                    {
                        await ImageCopier.TagAsync(client, item.Repository, Digest.Parse(prev), item.Stage.Tag, ct).ConfigureAwait(false);
                        actions.Add($"stage tag {item.Stage.Tag} moved back to {item.PreviousTag} ({prev})");
                    }
                    else if (item.SharedWith is null)
                    {
                        actions.Add($"stage tag {item.Stage.Tag} removed (no earlier version in {item.Stage.Name})");
                    }
                }
                else
                {
                    actions.Add($"stage tag {item.Stage.Tag} " + (current is null ? "absent" : $"names {current}, left as it is"));
                }

                if (item.SharedWith is { } other)
                    actions.Add($"image kept: the same digest is {other}'s");
                else
                    actions.Add(await client.DeleteManifestAsync(item.Repository, Digest.Parse(item.Digest), ct).ConfigureAwait(false)
                        ? $"image {item.Digest} deleted from {host}/{item.Repository}"
                        : $"image {item.Digest} was not in {host}/{item.Repository}");
                evidence[key] = string.Join("; ", actions);
            }
            catch (Exception e) when (e is RegistryException or HttpRequestException)
            {
                log.Warning("Rücknahme: the registry of stage {Stage} ({Host}) failed: {Error}", item.Stage.Name, host, e.Message);
                throw new LifecycleException(LifecycleErrors.WithdrawRegistry,
                    $"the Rücknahme could not take {item.Digest} out of stage {item.Stage.Name} ({host}/{item.Repository}): {(e as RegistryException)?.Code} {e.Message}; " +
                    "nothing was recorded, run the Rücknahme again when the registry answers (what was done so far is not repeated)", isTransient: true, inner: e);
            }
        }

        return evidence;
    }
}
