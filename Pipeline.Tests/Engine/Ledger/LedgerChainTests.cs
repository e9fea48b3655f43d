using Pipeline.Engine.Ledger;

namespace Pipeline.Tests.Engine.Ledger;

/// <summary>The hash chain as a pure function: build a chain, then tamper with it in every way.</summary>
public class LedgerChainTests
{
    private static List<LedgerEntry> Chain(int n)
    {
        var list = new List<LedgerEntry>();
        var prev = LedgerEntry.GenesisHash;
        var t0 = new DateTimeOffset(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);
        for (var i = 1; i <= n; i++)
        {
            var rec = new StageRecord(Guid.Parse("01234567-89ab-cdef-0123-456789abcdef"), "p", "stage" + i, Verdict.Passed, null, null,
                "sha256:in" + i, "sha256:out" + i, new Dictionary<string, string> { ["k"] = "v" + i });
            var at = t0.AddTicks(i * 12345678);
            at = LedgerEntry.TruncateToMicroseconds(at);
            var h = LedgerEntry.ComputeHash(i, rec, at, prev);
            list.Add(new LedgerEntry(i, rec, at, prev, h));
            prev = h;
        }

        return list;
    }

    [Test]
    public void An_untouched_chain_verifies() => Assert.That(LedgerStore.VerifyChain(Chain(5)), Is.Null);

    [Test]
    public void Changing_any_field_is_detected_at_that_entry()
    {
        var chain = Chain(5);
        chain[2] = chain[2] with { Record = chain[2].Record with { Verdict = Verdict.Failed } };
        Assert.That(LedgerStore.VerifyChain(chain), Is.EqualTo("entry 3 was changed after it was recorded"));

        chain = Chain(5);
        chain[1] = chain[1] with { Record = chain[1].Record with { Evidence = new Dictionary<string, string> { ["k"] = "forged" } } };
        Assert.That(LedgerStore.VerifyChain(chain), Is.EqualTo("entry 2 was changed after it was recorded"));

        chain = Chain(5);
        chain[4] = chain[4] with { RecordedAt = chain[4].RecordedAt.AddSeconds(1) };
        Assert.That(LedgerStore.VerifyChain(chain), Is.EqualTo("entry 5 was changed after it was recorded"));
    }

    [Test]
    public void Removing_an_entry_is_detected()
    {
        var chain = Chain(5);
        chain.RemoveAt(2);
        Assert.That(LedgerStore.VerifyChain(chain), Is.EqualTo("entry 3 is missing (found 4 next)"));
    }

    [Test]
    public void Rehashing_a_changed_entry_still_breaks_the_link_to_the_next()
    {
        var chain = Chain(5);
        var forged = chain[1].Record with { Reason = "nothing to see" };
        var h = LedgerEntry.ComputeHash(2, forged, chain[1].RecordedAt, chain[1].PreviousHash);
        chain[1] = chain[1] with { Record = forged, EntryHash = h };
        Assert.That(LedgerStore.VerifyChain(chain), Is.EqualTo("entry 3 does not link to entry 2"));
    }

    [Test]
    public void Swapping_two_entries_is_detected()
    {
        var chain = Chain(5);
        (chain[1], chain[2]) = (chain[2] with { Sequence = 2 }, chain[1] with { Sequence = 3 });
        Assert.That(LedgerStore.VerifyChain(chain), Is.EqualTo("entry 2 does not link to entry 1"));
    }

    [Test]
    public void Timestamps_are_hashed_at_the_precision_the_database_keeps()
    {
        var t = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(1234567);
        Assert.That(LedgerEntry.TruncateToMicroseconds(t).Ticks % 10, Is.Zero);
        Assert.That(LedgerEntry.TruncateToMicroseconds(t).Ticks, Is.EqualTo(t.Ticks - 7));
    }
}
