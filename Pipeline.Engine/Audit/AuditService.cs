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
public sealed partial class AuditService(LedgerStore ledger, KeyRing keys, string origin)
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
    public Task<IReadOnlyList<AuditRecord>> QueryAsync(LeafQuery query, CancellationToken ct) => QueryAsync(query, AuditScope.Everything, ct);

    /// <summary>As above, only entries whose signed statement names a pipeline of <paramref name="scope"/> (the lookup column pre-filters, the signed value decides).</summary>
    public async Task<IReadOnlyList<AuditRecord>> QueryAsync(LeafQuery query, AuditScope scope, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(scope);
        if (scope.Pipelines is { } inScope)
            query = query with { Pipelines = query.Pipelines is null ? inScope : query.Pipelines.Intersect(inScope, StringComparer.Ordinal).ToList() };
        var list = new List<AuditRecord>();
        foreach (var leaf in await ledger.Log.QueryAsync(query, ct).ConfigureAwait(false))
        {
            // The filters ran on lookup columns; an entry is listed only if its signed values match them too.
            if (TryOpen(leaf, out var statement, out var key, out _) && AuditRecord.From(leaf, statement!, key!.KeyId) is var r && Matches(r, statement!, query)
                && scope.Covers(r.Pipeline)) list.Add(r);
        }

        return list;
    }

    /// <summary>
    /// Checks the whole log: every leaf's envelope against its leaf hash, signature and index
    /// columns; every stored tree node against the leaves below it; every checkpoint's signature and
    /// root; the hash-chained ledger entries and their links to leaves; and, when given, that the
    /// log is consistent with an auditor's earlier checkpoint. Problems are in the order found:
    /// entries first (in log order), then tree nodes, checkpoints and ledger links.
    /// </summary>
    public Task<LogVerification> VerifyLogAsync(string? sinceCheckpointNote, CancellationToken ct) => VerifyLogAsync(sinceCheckpointNote, AuditScope.Everything, ct);

    /// <summary>
    /// As above: the whole log is checked whatever the scope (its sizes, root, counts and problem
    /// codes with log indexes reveal no tenant's content). For a scoped auditor each problem's
    /// message, which may name deliveries or stages of any tenant, is replaced by a neutral one.
    /// </summary>
    public async Task<LogVerification> VerifyLogAsync(string? sinceCheckpointNote, AuditScope scope, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(scope);
        var result = await VerifyWholeLogAsync(sinceCheckpointNote, ct).ConfigureAwait(false);
        return scope.All ? result : result with
        {
            Problems = result.Problems.Select(p => p with
            {
                Message = (p.LogIndex is { } i ? $"log entry {i}" : "the log") + ": details are shown only to all-tenant auditors (pipeline audit verify)",
            }).ToList(),
        };
    }

    private async Task<LogVerification> VerifyWholeLogAsync(string? sinceCheckpointNote, CancellationToken ct)
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
