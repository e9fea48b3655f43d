using Pipeline.Engine.Attestations;

namespace Pipeline.Engine.Stages;

/// <summary>
/// One intake step of a delivery: it takes an immutable input (the previous step's output) and
/// either returns its immutable output with what the ledger records of it, or throws an exception
/// with a stable code (<see cref="Pipeline.Checkup.CheckupException"/>, <see cref="Pipeline.Registry.RegistryException"/>,
/// <see cref="PipelineException"/>, <see cref="Configuration.ConfigurationException"/>). It owns its
/// attestation: the in-toto statement of its pass (from input and output) and of its failure (from
/// input and what it had found before it failed, <see cref="StepEvidence"/>). The runner only
/// sequences the steps, records them and handles failure.
/// </summary>
public interface IIntakeStep<TIn, TOut> where TOut : class
{
    /// <summary>Stable step name recorded in the ledger: fetch, verify, scan, publish, build, push.</summary>
    string Name { get; }

    /// <param name="found">This run's own collector: the evidence of checks that passed (and subjects it
    /// established) before a later check failed; the runner records it with the failure.</param>
    Task<StepResult<TOut>> RunAsync(DeliveryContext context, TIn input, StepEvidence found, CancellationToken ct);

    /// <summary>The statement of a passed step.</summary>
    InTotoStatement Attest(DeliveryContext context, TIn input, StepResult<TOut> result, DateTimeOffset finishedOn);

    /// <summary>The statement of a failed (or interrupted) step.</summary>
    InTotoStatement AttestFailure(DeliveryContext context, TIn input, StepFailure failure, DateTimeOffset finishedOn);
}

/// <summary>A passed step: its typed output (the next step's input) and what the ledger records.</summary>
public sealed record StepResult<TOut>(TOut Output, StageOutcome Outcome) where TOut : class;

/// <summary>What a passed stage records: input and output digests, and evidence (never secrets).</summary>
public sealed record StageOutcome(string? InputDigest, string? OutputDigest, IReadOnlyDictionary<string, string> Evidence)
{
    public static Dictionary<string, string> NewEvidence() => new(StringComparer.Ordinal);
}

/// <summary>
/// A failed step as recorded: the stable code and reason, and the evidence signed with it (the
/// checks that passed before, which check failed) plus what the step had established by then
/// (<see cref="StepEvidence.Subjects"/>, <see cref="StepEvidence.Signer"/>).
/// </summary>
public sealed record StepFailure(string Code, string Reason, IReadOnlyDictionary<string, string> Evidence, IReadOnlyList<ResourceDescriptor> Subjects, string? Signer);

/// <summary>
/// What one run of one step found before it finished: evidence of each check as it passes, the
/// subjects it established (the commit it read, the manifest it verified, the images it pushed) and
/// the signer it matched. One per step run, never shared between steps; read only when the step fails.
/// </summary>
public sealed class StepEvidence
{
    private readonly List<ResourceDescriptor> _subjects = [];

    /// <summary>Evidence of the checks that passed so far (the <c>evidence</c> of a failed statement).</summary>
    public Dictionary<string, string> Checks { get; } = new(StringComparer.Ordinal);

    public IReadOnlyList<ResourceDescriptor> Subjects => _subjects;

    /// <summary>Who signed the tag, once the step has matched the signature.</summary>
    public string? Signer { get; set; }

    public string this[string key]
    {
        set => Checks[key] = value;
    }

    public void Established(ResourceDescriptor subject) => _subjects.Add(subject);
}

/// <summary>The six intake steps of a pipeline, typed end to end: each step's output is the next one's input.</summary>
public sealed record IntakeSteps(
    IIntakeStep<FetchInput, Fetched> Fetch,
    IIntakeStep<Fetched, Verified> Verify,
    IIntakeStep<ScanInput, Scanned> Scan,
    IIntakeStep<Scanned, Published> Publish,
    IIntakeStep<BuildInput, Built> Build,
    IIntakeStep<PushInput, Pushed> Push)
{
    /// <summary>The names in order, as recorded in the ledger.</summary>
    public IReadOnlyList<string> Names => [Fetch.Name, Verify.Name, Scan.Name, Publish.Name, Build.Name, Push.Name];

    /// <summary>The engine's steps.</summary>
    public static IntakeSteps Default(Vcs.ExportLimits limits) =>
        new(new FetchStep(limits), new VerifyStep(), new ScanStep(), new PublishStep(), new BuildStep(), new PushStep());
}
