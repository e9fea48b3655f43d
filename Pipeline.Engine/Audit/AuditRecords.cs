using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>One problem found by an audit check; <see cref="LogIndex"/> names the entry when there is one.</summary>
public sealed record AuditProblem(string Code, string Message, long? LogIndex = null)
{
    public override string ToString() => $"{Code}: {Message}";
}

/// <summary>A log entry as an auditor reads it: decoded from the signed envelope, not from index columns.</summary>
public sealed record AuditRecord(
    long LogIndex,
    string? DeliveryId,
    string? Pipeline,
    string? Supplier,
    string? Tag,
    string Stage,
    string Verdict,
    string? ReasonCode,
    string? Reason,
    string? Signer,
    string? PolicyDigest,
    string PredicateType,
    string KeyId,
    IReadOnlyList<ResourceDescriptor> Subjects,
    IReadOnlyList<ResourceDescriptor> Materials,
    DateTimeOffset? RecordedAt)
{
    /// <summary>Every value from the signed statement (the time is its signed <c>finishedOn</c>), only the index from the log.</summary>
    internal static AuditRecord From(LogLeaf leaf, InTotoStatement s, string keyId)
    {
        var f = StatementFacts.Of(s);
        return new AuditRecord(leaf.Index, f.DeliveryId, f.Pipeline, f.Supplier, f.Tag, f.Stage, f.Verdict, f.ReasonCode, f.Reason, f.Signer, f.PolicyDigest,
            s.PredicateType, keyId, s.Subjects, s.Materials, LedgerBinding.SignedTime(s));
    }
}

/// <summary>How one link of a trace was checked.</summary>
public sealed record TraceStep(
    AuditRecord Record,
    bool SignatureValid,
    bool IncludedInCheckpoint,
    IReadOnlyList<string> UnlinkedMaterials,
    IReadOnlyList<AuditProblem> Problems)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>One delivery's chain, stage by stage.</summary>
public sealed record DeliveryTrace(string DeliveryId, string? Pipeline, string? Supplier, string? Tag, IReadOnlyList<TraceStep> Steps)
{
    public bool Ok => Steps.Count > 0 && Steps.All(s => s.Ok);
}

/// <summary>The answer to <c>audit trace</c>: the checkpoint every proof was checked against, and each matching delivery.</summary>
public sealed record TraceResult(string Query, SignedCheckpoint? Checkpoint, IReadOnlyList<DeliveryTrace> Deliveries)
{
    public bool Ok => Checkpoint is not null && Deliveries.Count > 0 && Deliveries.All(d => d.Ok);
}

/// <summary>The answer to <c>audit verify</c>: what was checked and every problem found, first one first.</summary>
public sealed record LogVerification(long TreeSize, string RootHex, long LeavesChecked, long NodesChecked, int CheckpointsChecked, int LedgerEntriesChecked,
    SignedCheckpoint? SinceCheckpoint, IReadOnlyList<AuditProblem> Problems)
{
    /// <summary>What the database enforces on the ledger tables (append-only triggers, write grants).</summary>
    public LedgerGuardReport? Guards { get; init; }

    public bool Ok => Problems.Count == 0;
    public AuditProblem? FirstProblem => Problems.Count == 0 ? null : Problems[0];
}
