using Pipeline.Engine.Definitions;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Stages;
using Serilog;

namespace Pipeline.Engine.Runs;

public sealed partial class DeliveryRunner
{
    /// <summary>
    /// Deliveries of <paramref name="definition"/> left running by a node that died after every
    /// step (the push included) was recorded, i.e. whose intake state is still pushed: their images are in the registry and their tag in
    /// VCS B, so they are not started again. Each is resumed where it stopped: a checkpoint, the
    /// stage attestations attached to the pushed images (those not attached yet), the status
    /// accepted, the lifecycle told. Called with the pipeline's lock held, before
    /// <see cref="StaleDeliveries"/> turns the other cut-off deliveries into retries. Returns them.
    /// </summary>
    private async Task<IReadOnlyList<DeliveryReport>> ResumePushedAsync(PipelineDefinition definition, PipelineLock pipelineLock, ILogger plog, CancellationToken ct)
    {
        var push = stepsFor(definition).Push.Name;
        var resumed = new List<DeliveryReport>();
        var unfinished = await ledger.ListUnfinishedAsync(definition.Name, ct).ConfigureAwait(false);
        foreach (var d in unfinished.Where(d => d.Status == DeliveryStatus.Running && d.IntakeState == IntakeState.Pushed))
        {
            var entries = await ledger.ReadAsync(d.Id, ct).ConfigureAwait(false);
            var dlog = plog.ForContext("DeliveryId", d.Id).ForContext("Tag", d.Tag);
            var images = (entries.Last(e => e.Record.Stage == push && e.Record.Verdict == Verdict.Passed).Record.OutputDigest ?? "")
                .Split(' ', StringSplitOptions.RemoveEmptyEntries);
            dlog.Warning("Delivery {DeliveryId} of {Tag} was cut off after all its stages were recorded (last: {Stage}); resuming its acceptance, not starting it again",
                d.Id, d.Tag, push);
            var subjects = await SubjectsAsync(images, ct).ConfigureAwait(false);
            resumed.Add(await FinishAcceptanceAsync(definition, d.Id, d.Tag, images, subjects, entries, Path.Combine(settings.WorkDir, "runs", d.Id.ToString("N")), pipelineLock, dlog)
                .ConfigureAwait(false) with { Attempt = d.Attempt });
        }

        return resumed;
    }

    /// <summary>The pushed images (<c>registry/repository@digest</c>) as attestation subjects, their media type and size read back from the registry.</summary>
    private async Task<IReadOnlyList<AttestationSubject>> SubjectsAsync(IReadOnlyList<string> images, CancellationToken ct)
    {
        var subjects = new List<AttestationSubject>();
        using var client = RegistryClients.Create(settings);
        foreach (var image in images)
        {
            var at = image.IndexOf('@', StringComparison.Ordinal);
            var slash = image.IndexOf('/', StringComparison.Ordinal);
            if (at < 0 || slash < 0 || slash > at) throw new PipelineException("RUN-RESUME-IMAGE", $"the recorded push names '{image}', not registry/repository@digest");
            var repository = image[(slash + 1)..at];
            var manifest = await client.GetManifestAsync(repository, image[(at + 1)..], ct).ConfigureAwait(false);
            subjects.Add(new AttestationSubject(repository, new Pipeline.Registry.Model.Descriptor(manifest.MediaType, manifest.Digest, manifest.Bytes.LongLength)));
        }

        return subjects;
    }
}
