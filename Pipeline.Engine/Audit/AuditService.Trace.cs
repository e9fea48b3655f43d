using Merkle = Pipeline.Checkup.Signatures.Sigstore.Merkle;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>
/// Trace and export, each for an <see cref="AuditScope"/>: an entry is in scope when its signed
/// statement names a pipeline of the scope's tenants. Out of scope, a delivery is answered exactly
/// like one that does not exist (no existence oracle); proofs and checkpoints stay global (hashes only).
/// </summary>
public sealed partial class AuditService
{
    /// <summary>The code of a scoped export refused because an entry of the delivery does not verify (its tenant cannot be established).</summary>
    public const string ScopeUnverifiable = "AUDIT-SCOPE-UNVERIFIABLE";

    /// <summary>As <see cref="TraceAsync(string, AuditScope, CancellationToken)"/> over every tenant.</summary>
    public Task<TraceResult> TraceAsync(string query, CancellationToken ct) => TraceAsync(query, AuditScope.Everything, ct);

    /// <summary>
    /// Traces deliveries by image digest (<c>sha256:…</c> or a reference ending in it), delivery id
    /// or tag name: every stage's statement, its signature, its inclusion in the latest checkpoint,
    /// and whether each material links to a subject of an earlier stage. Only deliveries with at
    /// least one verified statement in <paramref name="scope"/> are answered; in a scoped answer,
    /// statements of other tenants are left out and an entry whose signature fails shows only its
    /// index and problem (its content is unproven, so it could be anybody's).
    /// </summary>
    public async Task<TraceResult> TraceAsync(string query, AuditScope scope, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var ids = new List<Guid>();
        var q = query.Trim();
        var at = q.LastIndexOf('@');
        if (at >= 0) q = q[(at + 1)..];
        if (Guid.TryParse(q, out var id)) ids.Add(id);
        else if (q.StartsWith("sha256:", StringComparison.Ordinal) || (q.Length == 64 && q.All(Uri.IsHexDigit)))
        {
            var digest = q.StartsWith("sha256:", StringComparison.Ordinal) ? q : "sha256:" + q;
            foreach (var leaf in await ledger.Log.QueryAsync(new LeafQuery(Digest: digest.ToLowerInvariant(), Pipelines: scope.Pipelines), ct).ConfigureAwait(false))
            {
                if (leaf.DeliveryId is { } d && !ids.Contains(d) && (scope.All || InScope(leaf, scope))) ids.Add(d);
            }
        }
        else
        {
            // By tag: from the log's signed statements (the tag column is checked by audit verify), not the mutable deliveries table.
            foreach (var leaf in await ledger.Log.QueryAsync(new LeafQuery(Tag: q, Limit: 100_000, Pipelines: scope.Pipelines), ct).ConfigureAwait(false))
            {
                if (TryOpen(leaf, out var st, out _, out _) && StatementFacts.Of(st!) is var f && f.Tag == q && scope.Covers(f.Pipeline)
                    && Guid.TryParse(f.DeliveryId, out var d) && !ids.Contains(d)) ids.Add(d);
            }
        }

        SignedCheckpoint? checkpoint = null;
        AuditProblem? checkpointProblem = null;
        try
        {
            checkpoint = await LatestCheckpointAsync(ct).ConfigureAwait(false);
        }
        catch (PipelineException e)
        {
            checkpointProblem = new AuditProblem(e.Code, e.Message);
        }

        var traces = new List<DeliveryTrace>();
        foreach (var deliveryId in ids)
        {
            var leaves = await ledger.Log.QueryAsync(new LeafQuery(DeliveryId: deliveryId, Limit: 10_000), ct).ConfigureAwait(false);
            var steps = new List<TraceStep>();
            var earlierSubjects = new HashSet<string>(StringComparer.Ordinal);
            foreach (var leaf in leaves)
            {
                var problems = new List<AuditProblem>();
                var signatureOk = TryOpen(leaf, out var statement, out var key, out var openProblem);
                if (!signatureOk)
                {
                    problems.Add(scope.All ? openProblem! : openProblem! with { Message = $"log entry {leaf.Index} does not verify; its content is shown only to all-tenant auditors" });
                    steps.Add(new TraceStep(scope.All
                        ? new AuditRecord(leaf.Index, leaf.DeliveryId?.ToString("D"), leaf.Pipeline, leaf.Supplier, null, leaf.Stage, leaf.Verdict,
                            null, null, null, null, leaf.PredicateType, leaf.KeyId, [], [], null)
                        : new AuditRecord(leaf.Index, null, null, null, null, "", "", null, null, null, null, "", "", [], [], null), false, false, [], problems));
                    continue;
                }

                if (!scope.Covers(StatementFacts.Of(statement!).Pipeline)) continue;
                var included = false;
                if (checkpointProblem is not null) problems.Add(checkpointProblem);
                else if (leaf.Index >= checkpoint!.TreeSize)
                    problems.Add(new AuditProblem("LOG-NOT-CHECKPOINTED", $"entry {leaf.Index} is newer than the latest checkpoint (size {checkpoint.TreeSize}); run 'pipeline audit checkpoint'", leaf.Index));
                else
                {
                    try
                    {
                        var proof = await ledger.Log.InclusionProofAsync(leaf.Index, checkpoint.TreeSize, ct).ConfigureAwait(false);
                        included = MerkleProofs.VerifyInclusion(leaf.Index, checkpoint.TreeSize, Merkle.LeafHash(leaf.Envelope), proof, checkpoint.RootHash);
                    }
                    catch (PipelineException e)
                    {
                        problems.Add(new AuditProblem(e.Code, e.Message, leaf.Index));
                    }

                    if (!included && problems.Count == 0)
                        problems.Add(new AuditProblem("LOG-INCLUSION", $"entry {leaf.Index} is not included in the signed checkpoint at size {checkpoint.TreeSize}: the log was changed after it was checkpointed", leaf.Index));
                }

                var unlinked = statement!.Materials
                    .Where(m => m.Uri?.StartsWith("oci://", StringComparison.Ordinal) != true)
                    .SelectMany(m => m.DigestStrings)
                    .Where(d => !earlierSubjects.Contains(d))
                    .ToList();
                if (unlinked.Count > 0)
                    problems.Add(new AuditProblem("TRACE-UNLINKED", $"entry {leaf.Index} ({leaf.Stage}) consumed {string.Join(", ", unlinked)} which no earlier stage of this delivery produced", leaf.Index));
                // A Freigabe's embedded human signature must verify too (Audit/FreigabeEvidence.cs).
                if (FreigabeEvidence.Check(statement) is { Problem: { } freigabeProblem })
                    problems.Add(new AuditProblem(freigabeProblem[..freigabeProblem.IndexOf(':')], $"entry {leaf.Index} ({leaf.Stage}): {freigabeProblem[(freigabeProblem.IndexOf(':') + 2)..]}", leaf.Index));
                foreach (var s in statement.Subjects.SelectMany(x => x.DigestStrings)) earlierSubjects.Add(s);
                steps.Add(new TraceStep(AuditRecord.From(leaf, statement, key!.KeyId), true, included, unlinked, problems));
            }

            // Nothing known (no entry) or nothing proven in scope: answered as if the delivery did not exist.
            if (steps.Count == 0 || (!scope.All && !steps.Any(s => s.SignatureValid))) continue;
            var first = (steps.FirstOrDefault(s => s.SignatureValid) ?? steps[0]).Record;
            traces.Add(new DeliveryTrace(deliveryId.ToString("D"), first.Pipeline, first.Supplier, first.Tag, steps));
        }

        return new TraceResult(query, checkpoint, traces);
    }

    /// <summary>As <see cref="ExportAsync(string, AuditScope, CancellationToken)"/> over every tenant.</summary>
    public Task<AuditBundle> ExportAsync(string imageDigest, CancellationToken ct) => ExportAsync(imageDigest, AuditScope.Everything, ct);

    /// <summary>
    /// A self-contained bundle for everything recorded about an image digest: every entry of the
    /// deliveries that produced it, with inclusion proofs against the latest checkpoint (signed
    /// first when this service may sign and the latest one does not cover the entries), and the public keys.
    /// A scoped bundle holds only statements of the scope's tenants; the checkpoint and the proofs
    /// are the global log's (hashes of other entries, nothing readable).
    /// </summary>
    /// <exception cref="PipelineException">
    /// AUDIT-NOT-FOUND when nothing in scope names the digest; AUDIT-SCOPE-UNVERIFIABLE when a scoped
    /// delivery has an entry that does not verify (its tenant cannot be established; an all-tenant auditor sees it).
    /// </exception>
    public async Task<AuditBundle> ExportAsync(string imageDigest, AuditScope scope, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var trace = await TraceAsync(imageDigest, scope, ct).ConfigureAwait(false);
        var leaves = new List<LogLeaf>();
        foreach (var d in trace.Deliveries)
        {
            foreach (var leaf in await ledger.Log.QueryAsync(new LeafQuery(DeliveryId: Guid.Parse(d.DeliveryId), Limit: 10_000), ct).ConfigureAwait(false))
            {
                if (scope.All) leaves.Add(leaf);
                else if (!TryOpen(leaf, out var statement, out _, out var problem))
                    throw new PipelineException(ScopeUnverifiable, $"log entry {leaf.Index} of delivery {d.DeliveryId} does not verify ({problem!.Code}), so its tenant cannot be established and a {scope} bundle cannot be complete; an all-tenant auditor runs 'pipeline audit verify'");
                else if (scope.Covers(StatementFacts.Of(statement!).Pipeline)) leaves.Add(leaf);
            }
        }

        if (leaves.Count == 0) throw new PipelineException("AUDIT-NOT-FOUND", $"no log entry names '{imageDigest}'");

        var checkpointRow = await ledger.Log.LatestCheckpointAsync(ct).ConfigureAwait(false);
        if ((checkpointRow is null || checkpointRow.TreeSize <= leaves.Max(l => l.Index)) && ledger.Signing is not null)
            await ledger.CheckpointAsync(ct).ConfigureAwait(false);
        var checkpoint = await LatestCheckpointAsync(ct).ConfigureAwait(false);
        var entries = new List<AuditBundleEntry>();
        foreach (var leaf in leaves.OrderBy(l => l.Index))
        {
            if (leaf.Index >= checkpoint.TreeSize)
                throw new PipelineException("LOG-NOT-CHECKPOINTED", $"entry {leaf.Index} is newer than the latest checkpoint; run 'pipeline audit checkpoint' first");
            var proof = await ledger.Log.InclusionProofAsync(leaf.Index, checkpoint.TreeSize, ct).ConfigureAwait(false);
            entries.Add(new AuditBundleEntry(leaf.Index, leaf.Envelope, proof));
        }

        var keyIds = leaves.Select(l => l.KeyId).Append(checkpoint.KeyId).Distinct().ToList();
        var publicKeys = keyIds.Select(k => keys.Find(k)).OfType<VerificationKey>().ToList();
        var digest = imageDigest[(imageDigest.LastIndexOf('@') + 1)..];
        return new AuditBundle(digest.StartsWith("sha256:", StringComparison.Ordinal) ? digest : "sha256:" + digest, checkpoint.Note, publicKeys, entries);
    }

    /// <summary>Whether a leaf's signed statement verifies and names a pipeline of <paramref name="scope"/>.</summary>
    private bool InScope(LogLeaf leaf, AuditScope scope) =>
        TryOpen(leaf, out var statement, out _, out _) && scope.Covers(StatementFacts.Of(statement!).Pipeline);
}
