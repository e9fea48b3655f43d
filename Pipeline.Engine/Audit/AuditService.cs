using System.Security.Cryptography;
using Merkle = Pipeline.Checkup.Signatures.Sigstore.Merkle;
using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>
/// The auditor's questions over the ledger database, as plain query functions returning records
/// (the CLI prints them; an HTTP API can serve them). Every answer is checked against the
/// signed envelopes, the Merkle tree and the signed checkpoints, never taken from index columns.
/// </summary>
public sealed class AuditService(LedgerStore ledger, KeyRing keys, string origin)
{
    private const int Page = 10_000;
    private const int MaxProblems = 100;

    public TransparencyLog Log => ledger.Log;

    /// <summary>The latest stored checkpoint whose signature verifies (a bad latest one is an error, not skipped).</summary>
    /// <exception cref="PipelineException">LOG-NO-CHECKPOINT or a LOG-CHECKPOINT-* code.</exception>
    public async Task<SignedCheckpoint> LatestCheckpointAsync(CancellationToken ct)
    {
        var row = await ledger.Log.LatestCheckpointAsync(ct).ConfigureAwait(false)
                  ?? throw new PipelineException("LOG-NO-CHECKPOINT", "the log has no checkpoint yet; run 'pipeline audit checkpoint'");
        var cp = CheckpointNote.Verify(row.Note, keys, origin);
        if (cp.TreeSize != row.TreeSize || !cp.RootHash.AsSpan().SequenceEqual(row.RootHash))
            throw new PipelineException("LOG-CHECKPOINT-MISMATCH", $"the stored checkpoint row {row.TreeSize} disagrees with its signed note");
        return cp;
    }

    /// <summary>Entries matching <paramref name="query"/>, decoded and signature-checked (entries whose envelope does not verify are left out and reported by <c>audit verify</c>).</summary>
    public async Task<IReadOnlyList<AuditRecord>> QueryAsync(LeafQuery query, CancellationToken ct)
    {
        var list = new List<AuditRecord>();
        foreach (var leaf in await ledger.Log.QueryAsync(query, ct).ConfigureAwait(false))
        {
            // The filters ran on lookup columns; an entry is listed only if its signed values match them too.
            if (TryOpen(leaf, out var statement, out var key, out _) && AuditRecord.From(leaf, statement!, key!.KeyId) is var r && Matches(r, statement!, query)) list.Add(r);
        }

        return list;
    }

    /// <summary>
    /// Traces deliveries by image digest (<c>sha256:…</c> or a reference ending in it), delivery id
    /// or tag name: every stage's statement, its signature, its inclusion in the latest checkpoint,
    /// and whether each material links to a subject of an earlier stage.
    /// </summary>
    public async Task<TraceResult> TraceAsync(string query, CancellationToken ct)
    {
        var ids = new List<Guid>();
        var q = query.Trim();
        var at = q.LastIndexOf('@');
        if (at >= 0) q = q[(at + 1)..];
        if (Guid.TryParse(q, out var id)) ids.Add(id);
        else if (q.StartsWith("sha256:", StringComparison.Ordinal) || (q.Length == 64 && q.All(Uri.IsHexDigit)))
        {
            var digest = q.StartsWith("sha256:", StringComparison.Ordinal) ? q : "sha256:" + q;
            foreach (var leaf in await ledger.Log.QueryAsync(new LeafQuery(Digest: digest.ToLowerInvariant()), ct).ConfigureAwait(false))
            {
                if (leaf.DeliveryId is { } d && !ids.Contains(d)) ids.Add(d);
            }
        }
        else
        {
            // By tag: from the log's signed statements (the tag column is checked by audit verify), not the mutable deliveries table.
            foreach (var leaf in await ledger.Log.QueryAsync(new LeafQuery(Tag: q, Limit: 100_000), ct).ConfigureAwait(false))
            {
                if (TryOpen(leaf, out var st, out _, out _) && StatementFacts.Of(st!).Tag == q && Guid.TryParse(StatementFacts.Of(st!).DeliveryId, out var d) && !ids.Contains(d)) ids.Add(d);
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
                    problems.Add(openProblem!);
                    steps.Add(new TraceStep(new AuditRecord(leaf.Index, leaf.DeliveryId?.ToString("D"), leaf.Pipeline, leaf.Supplier, null, leaf.Stage, leaf.Verdict,
                        null, null, null, null, leaf.PredicateType, leaf.KeyId, [], [], null), false, false, [], problems));
                    continue;
                }

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

            var first = steps.FirstOrDefault()?.Record;
            traces.Add(new DeliveryTrace(deliveryId.ToString("D"), first?.Pipeline, first?.Supplier, first?.Tag, steps));
        }

        return new TraceResult(query, checkpoint, traces);
    }

    /// <summary>
    /// Checks the whole log: every leaf's envelope against its leaf hash, signature and index
    /// columns; every stored tree node against the leaves below it; every checkpoint's signature and
    /// root; the hash-chained ledger entries and their links to leaves; and, when given, that the
    /// log is consistent with an auditor's earlier checkpoint. Problems are in the order found:
    /// entries first (in log order), then tree nodes, checkpoints and ledger links.
    /// </summary>
    public async Task<LogVerification> VerifyLogAsync(string? sinceCheckpointNote, CancellationToken ct)
    {
        var problems = new List<AuditProblem>();
        void Add(AuditProblem p)
        {
            if (problems.Count < MaxProblems) problems.Add(p);
        }

        // 1. Leaves, in order, gap-free; leaf hashes recomputed from the stored envelope bytes.
        var leafHashes = new List<byte[]>();
        var leafFacts = new Dictionary<long, SignedLeaf>();
        var stored = new HashSet<long>();
        var firstWithHash = new Dictionary<(long, long), long>(); // first 128 bits of each leaf hash
        long expected = 0;
        // Pages are read ahead while the current one is checked; hashing and signature checks of a
        // page run in parallel, problems are then reported in log order.
        var nextPage = ledger.Log.LeavesAsync(-1, Page, ct);
        while (true)
        {
            var page = await nextPage.ConfigureAwait(false);
            if (page.Count == 0) break;
            nextPage = ledger.Log.LeavesAsync(page[^1].Index, Page, ct);
            var opened = new (byte[] Hash, bool Ok, InTotoStatement? Statement, VerificationKey? Key, AuditProblem? Problem)[page.Count];
            Parallel.For(0, page.Count, new ParallelOptions { CancellationToken = ct }, k =>
            {
                var ok = TryOpen(page[k], out var st, out var key, out var pr);
                opened[k] = (Merkle.LeafHash(page[k].Envelope), ok, st, key, pr);
            });
            for (var k = 0; k < page.Count; k++)
            {
                var leaf = page[k];
                if (leaf.Index != expected)
                {
                    Add(new AuditProblem("LOG-LEAF-MISSING", $"log entry {expected} is missing (the next stored entry is {leaf.Index}): entries were deleted", expected));
                    // Keep positions honest: the tree is checked over what is stored, so every later node differs too.
                    expected = leaf.Index;
                }

                var (hash, opens, statement, key, problem) = opened[k];
                leafHashes.Add(hash);
                stored.Add(leaf.Index);
                // The engine never logs the same envelope twice (every signature is fresh): a copy is a replayed entry.
                var hashKey = (BitConverter.ToInt64(hash, 0), BitConverter.ToInt64(hash, 8));
                if (!firstWithHash.TryAdd(hashKey, leaf.Index))
                    Add(new AuditProblem("LOG-LEAF-DUPLICATE", $"log entry {leaf.Index} is a copy of log entry {firstWithHash[hashKey]}: an entry was replayed", leaf.Index));
                if (!hash.AsSpan().SequenceEqual(leaf.LeafHash))
                    Add(new AuditProblem("LOG-LEAF-CHANGED", $"log entry {leaf.Index}: the stored envelope does not match its leaf hash (changed after it was logged)", leaf.Index));
                if (opens)
                {
                    var f = StatementFacts.Of(statement!);
                    leafFacts[leaf.Index] = new SignedLeaf(f.Stage, f.Verdict, Guid.TryParse(f.DeliveryId, out var g) ? g : null, LedgerBinding.SignedRecordDigest(statement!));
                    if (SignedColumns.LeafMismatches(leaf, statement!, key!.KeyId) is { Count: > 0 } columns)
                        Add(new AuditProblem("LOG-INDEX-MISMATCH", $"log entry {leaf.Index}: the lookup columns ({string.Join(", ", columns)}) disagree with the signed envelope", leaf.Index));
                }
                else
                {
                    Add(problem! with { LogIndex = leaf.Index, Message = $"log entry {leaf.Index}: {problem.Message}" });
                }

                expected++;
            }
        }

        var size = (long)leafHashes.Count;
        var storedSize = await ledger.Log.SizeAsync(ct).ConfigureAwait(false);

        // 2. Every perfect subtree recomputed from the leaves, compared with the stored nodes.
        var levels = new List<List<byte[]>> { leafHashes };
        while (levels[^1].Count > 1)
        {
            var below = levels[^1];
            var up = new List<byte[]>(below.Count / 2);
            for (var i = 0; i + 1 < below.Count; i += 2) up.Add(Merkle.NodeHash(below[i], below[i + 1]));
            levels.Add(up);
        }

        long nodesChecked = 0;
        var seen = new HashSet<(int, long)>();
        await foreach (var (level, index, hash) in ledger.Log.AllNodesAsync(ct).ConfigureAwait(false))
        {
            nodesChecked++;
            seen.Add((level, index));
            if (level >= levels.Count || index >= levels[level].Count)
                Add(new AuditProblem("LOG-NODE-EXTRA", $"tree node (level {level}, index {index}) covers entries the log does not have: the log was truncated", index << level));
            else if (!levels[level][(int)index].AsSpan().SequenceEqual(hash))
                Add(new AuditProblem("LOG-NODE-CHANGED", $"tree node (level {level}, index {index}) does not match entries {index << level}..{((index + 1) << level) - 1} below it", index << level));
        }

        for (var level = 0; level < levels.Count; level++)
        {
            for (var i = 0; i < levels[level].Count; i++)
            {
                if (!seen.Contains((level, i)))
                {
                    Add(new AuditProblem("LOG-NODE-MISSING", $"tree node (level {level}, index {i}) over entries {(long)i << level}..{(((long)i + 1) << level) - 1} is missing: the stored tree was truncated", (long)i << level));
                    break;
                }
            }
        }

        byte[] RootAt(long n) => MerkleProofs.Root(n, (l, i) => levels[l][(int)i]);
        var root = RootAt(size);

        // 3. Every stored checkpoint: signature, origin, size within the log, root equal to the recomputed one.
        var checkpoints = await ledger.Log.CheckpointsAsync(latestOnly: false, ct).ConfigureAwait(false);
        foreach (var row in checkpoints)
        {
            try
            {
                var cp = CheckpointNote.Verify(row.Note, keys, origin);
                if (cp.TreeSize != row.TreeSize || !cp.RootHash.AsSpan().SequenceEqual(row.RootHash) || cp.KeyId != row.KeyId)
                    Add(new AuditProblem("LOG-CHECKPOINT-MISMATCH", $"checkpoint at size {row.TreeSize}: the stored row (size, root or key id) disagrees with its signed note"));
                else if (cp.TreeSize > size)
                    Add(new AuditProblem("LOG-TRUNCATED", $"checkpoint at size {cp.TreeSize} is signed, but the log now holds {size} entries: entries were removed", size));
                else if (!RootAt(cp.TreeSize).AsSpan().SequenceEqual(cp.RootHash))
                    Add(new AuditProblem("LOG-CHECKPOINT-ROOT", $"checkpoint at size {cp.TreeSize}: its signed root does not match the log (history rewritten)"));
            }
            catch (PipelineException e)
            {
                Add(new AuditProblem(e.Code, $"checkpoint at size {row.TreeSize}: {e.Message}"));
            }
        }

        // 4. The auditor's own checkpoint: the log must extend it (consistency proof from stored nodes).
        SignedCheckpoint? since = null;
        if (sinceCheckpointNote is not null)
        {
            try
            {
                since = CheckpointNote.Verify(sinceCheckpointNote, keys, origin);
                if (since.TreeSize > size)
                    Add(new AuditProblem("LOG-TRUNCATED", $"your checkpoint has {since.TreeSize} entries but the log now holds {size}: entries were removed", size));
                else if (since.TreeSize > 0)
                {
                    var proof = await ledger.Log.ConsistencyProofAsync(since.TreeSize, storedSize, ct).ConfigureAwait(false);
                    var latest = storedSize == size ? root : await ledger.Log.RootAsync(storedSize, ct).ConfigureAwait(false);
                    if (!MerkleProofs.VerifyConsistency(since.TreeSize, storedSize, since.RootHash, latest, proof) || !RootAt(since.TreeSize).AsSpan().SequenceEqual(since.RootHash))
                        Add(new AuditProblem("LOG-INCONSISTENT", $"the log is not an extension of your checkpoint at size {since.TreeSize}: history before it was rewritten"));
                }
            }
            catch (PipelineException e)
            {
                Add(new AuditProblem(e.Code, $"your checkpoint: {e.Message}"));
            }
        }

        // 5. The hash-chained ledger entries: one per leaf, each the record its leaf signed.
        var entries = await ledger.ReadAsync(null, ct).ConfigureAwait(false);
        if (LedgerStore.VerifyChain(entries) is { } chainProblem) Add(new AuditProblem("LEDGER-CHAIN", "ledger chain: " + chainProblem));
        SignedColumns.CheckEntries(entries, stored, leafFacts, Add);

        // 6. The database still enforces append-only (triggers enabled, no write grants beyond the owner).
        var guards = await LedgerGuards.CheckAsync(ledger.DataSource, ct).ConfigureAwait(false);
        foreach (var p in guards.Problems) Add(p);

        return new LogVerification(size, Convert.ToHexStringLower(root), size, nodesChecked, checkpoints.Count, entries.Count, since, problems) { Guards = guards };
    }

    /// <summary>
    /// A self-contained bundle for everything recorded about an image digest: every entry of the
    /// deliveries that produced it, with inclusion proofs against the latest checkpoint (signed
    /// first when this service may sign and the latest one does not cover the entries), and the public keys.
    /// </summary>
    /// <exception cref="PipelineException">AUDIT-NOT-FOUND when nothing in the log names the digest.</exception>
    public async Task<AuditBundle> ExportAsync(string imageDigest, CancellationToken ct)
    {
        var trace = await TraceAsync(imageDigest, ct).ConfigureAwait(false);
        var leaves = new List<LogLeaf>();
        foreach (var d in trace.Deliveries)
            leaves.AddRange(await ledger.Log.QueryAsync(new LeafQuery(DeliveryId: Guid.Parse(d.DeliveryId), Limit: 10_000), ct).ConfigureAwait(false));
        if (leaves.Count == 0) throw new PipelineException("AUDIT-NOT-FOUND", $"no log entry names '{imageDigest}'");

        var checkpointRow = await ledger.Log.LatestCheckpointAsync(ct).ConfigureAwait(false);
        if ((checkpointRow is null || checkpointRow.TreeSize <= leaves.Max(l => l.Index)) && ledger.Signing is not null)
            checkpointRow = await ledger.CheckpointAsync(ct).ConfigureAwait(false);
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

    /// <summary>Whether the signed values of an entry satisfy every filter of <paramref name="q"/>.</summary>
    private static bool Matches(AuditRecord r, InTotoStatement s, LeafQuery q) =>
        (q.Pipeline is null || r.Pipeline == q.Pipeline) && (q.Supplier is null || r.Supplier == q.Supplier) && (q.Stage is null || r.Stage == q.Stage)
        && (q.Verdict is null || r.Verdict == q.Verdict) && (q.KeyId is null || r.KeyId == q.KeyId) && (q.DeliveryId is null || r.DeliveryId == q.DeliveryId.Value.ToString("D"))
        && (q.Tag is null || r.Tag == q.Tag)
        && (q.Digest is null || s.Subjects.Concat(s.Materials).SelectMany(x => x.DigestStrings).Contains(q.Digest))
        && (q.From is null || r.RecordedAt >= q.From) && (q.Until is null || r.RecordedAt < q.Until);

    /// <summary>Decodes and signature-checks a leaf; false with the problem when anything is wrong.</summary>
    internal bool TryOpen(LogLeaf leaf, out InTotoStatement? statement, out VerificationKey? key, out AuditProblem? problem)
    {
        statement = null;
        key = null;
        problem = null;
        try
        {
            var env = DsseEnvelope.Parse(leaf.Envelope);
            if (env.PayloadType != DsseEnvelope.InTotoPayloadType)
                throw new PipelineException("ATT-PAYLOAD-TYPE", $"payload type '{env.PayloadType}' is not {DsseEnvelope.InTotoPayloadType}");
            key = env.Verify(keys);
            statement = InTotoStatement.Parse(env.Payload);
            return true;
        }
        catch (PipelineException e)
        {
            problem = new AuditProblem(e.Code, e.Message, leaf.Index);
            return false;
        }
    }

    internal static string Sha256Hex(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
