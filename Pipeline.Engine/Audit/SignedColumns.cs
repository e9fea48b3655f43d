using Pipeline.Engine.Attestations;
using Pipeline.Engine.Ledger;

namespace Pipeline.Engine.Audit;

/// <summary>What <c>audit verify</c> keeps of one leaf whose envelope verified: the signed facts the ledger rows are checked against.</summary>
internal sealed record SignedLeaf(string Stage, string Verdict, Guid? Delivery, string? RecordDigest);

/// <summary>
/// Compares every column a command shows, filters or sorts on with the signed statement: the lookup
/// columns of a log leaf, and each <c>ledger_entries</c> row with the record its leaf signed; and
/// checks that leaves and ledger rows correspond one to one.
/// </summary>
internal static class SignedColumns
{
    /// <summary>The names of the leaf's lookup columns that disagree with its signed statement (empty when all agree).</summary>
    public static IReadOnlyList<string> LeafMismatches(LogLeaf leaf, InTotoStatement statement, string signedByKeyId)
    {
        var f = StatementFacts.Of(statement);
        var bad = new List<string>();
        if (f.DeliveryId != leaf.DeliveryId?.ToString("D")) bad.Add("delivery");
        if (f.Pipeline != leaf.Pipeline) bad.Add("pipeline");
        if (f.Supplier != leaf.Supplier) bad.Add("supplier");
        if (f.Tag != leaf.Tag) bad.Add("tag");
        if (f.Stage != leaf.Stage) bad.Add("stage");
        if (f.Verdict != leaf.Verdict) bad.Add("verdict");
        if (statement.PredicateType != leaf.PredicateType) bad.Add("predicate type");
        if (signedByKeyId != leaf.KeyId) bad.Add("key id");
        if (!SameSet(statement.Subjects.SelectMany(x => x.DigestStrings), leaf.Subjects)) bad.Add("subjects");
        if (!SameSet(statement.Materials.SelectMany(x => x.DigestStrings), leaf.Materials)) bad.Add("materials");
        if (LedgerBinding.SignedTime(statement) != leaf.RecordedAt) bad.Add("time");
        return bad;
    }

    /// <summary>
    /// Checks the ledger rows against the leaves: every row names a stored leaf (when the log has any),
    /// no two rows name the same leaf, every stored leaf is named by a row, and each row's columns are
    /// the record its leaf signed.
    /// </summary>
    public static void CheckEntries(IReadOnlyList<LedgerEntry> entries, IReadOnlySet<long> storedLeaves, IReadOnlyDictionary<long, SignedLeaf> signed, Action<AuditProblem> add)
    {
        var linked = new Dictionary<long, long>();
        foreach (var e in entries)
        {
            var what = $"{e.Record.Stage} {Verdict(e.Record.Verdict)} of delivery {e.Record.DeliveryId}";
            if (e.LogIndex is not { } li)
            {
                if (storedLeaves.Count > 0)
                    add(new AuditProblem("LEDGER-UNSIGNED", $"ledger entry {e.Sequence} ({what}) points at no signed log entry: its values are not proven (a row was added or unlinked)"));
                continue;
            }

            if (!linked.TryAdd(li, e.Sequence))
            {
                add(new AuditProblem("LEDGER-LEAF-SHARED", $"ledger entries {linked[li]} and {e.Sequence} both point at log entry {li}", li));
                continue;
            }

            if (!storedLeaves.Contains(li))
            {
                add(new AuditProblem("LEDGER-LEAF-MISSING", $"ledger entry {e.Sequence} ({what}) points at log entry {li}, which is not in the log: the log was cut", li));
                continue;
            }

            if (!signed.TryGetValue(li, out var f)) continue; // a leaf that does not verify is reported with the leaves
            if (f.Stage != e.Record.Stage || f.Verdict != Verdict(e.Record.Verdict) || f.Delivery != e.Record.DeliveryId)
                add(new AuditProblem("LEDGER-LEAF-MISMATCH", $"ledger entry {e.Sequence} does not match log entry {li} it points at", li));
            else if (f.RecordDigest is null)
                add(new AuditProblem("LEDGER-LEAF-UNBOUND", $"log entry {li} signs no ledger record digest (written before rows were bound): the other columns of ledger entry {e.Sequence} are not proven", li));
            else if (f.RecordDigest != LedgerBinding.RecordDigest(e.Record, e.RecordedAt))
                add(new AuditProblem("LEDGER-LEAF-MISMATCH", $"ledger entry {e.Sequence}: its row (reason, digests, evidence or time) is not the record log entry {li} signed", li));
        }

        foreach (var li in storedLeaves.Order())
        {
            if (!linked.ContainsKey(li))
            {
                var what = signed.TryGetValue(li, out var f) ? $" ({f.Stage} {f.Verdict} of delivery {f.Delivery})" : "";
                add(new AuditProblem("LOG-LEAF-UNLINKED", $"log entry {li}{what} has no ledger entry: a ledger row was deleted or unlinked", li));
            }
        }
    }

    private static string Verdict(Ledger.Verdict v) => v == Ledger.Verdict.Passed ? "passed" : "failed";

    private static bool SameSet(IEnumerable<string> signed, IEnumerable<string> column) =>
        signed.Distinct().Order(StringComparer.Ordinal).SequenceEqual(column.Order(StringComparer.Ordinal));
}
