using Pipeline.Engine.Ledger;

namespace Pipeline.Tests.Engine.Ledger;

/// <summary>The intake state machine: each step's pass moves one state on; failures, interruptions and acceptance only where they make sense.</summary>
public class IntakeStateMachineTests
{
    [TestCase(IntakeState.Started, IntakeState.Fetched)]
    [TestCase(IntakeState.Fetched, IntakeState.Verified)]
    [TestCase(IntakeState.Verified, IntakeState.Scanned)]
    [TestCase(IntakeState.Scanned, IntakeState.Published)]
    [TestCase(IntakeState.Published, IntakeState.Built)]
    [TestCase(IntakeState.Built, IntakeState.Pushed)]
    [TestCase(IntakeState.Pushed, IntakeState.Accepted)]
    [TestCase(IntakeState.Started, IntakeState.Failed)]
    [TestCase(IntakeState.Verified, IntakeState.Failed)]
    [TestCase(IntakeState.Built, IntakeState.Failed)]
    [TestCase(IntakeState.Started, IntakeState.Interrupted)]
    [TestCase(IntakeState.Scanned, IntakeState.Interrupted)]
    [TestCase(IntakeState.Pushed, IntakeState.Interrupted)]
    [TestCase(IntakeState.Failed, IntakeState.Interrupted)]
    public void An_allowed_transition_passes(IntakeState from, IntakeState to)
    {
        Assert.That(IntakeStateMachine.IsAllowed(from, to));
        Assert.DoesNotThrow(() => IntakeStateMachine.Ensure(Guid.Empty, from, to));
    }

    [TestCase(IntakeState.Started, IntakeState.Verified, "started to verified", "fetched, failed, interrupted")]
    [TestCase(IntakeState.Scanned, IntakeState.Fetched, "scanned to fetched", "published, failed, interrupted")]
    [TestCase(IntakeState.Built, IntakeState.Accepted, "built to accepted", "pushed, failed, interrupted")]
    [TestCase(IntakeState.Pushed, IntakeState.Failed, "pushed to failed", "accepted, interrupted")]
    [TestCase(IntakeState.Failed, IntakeState.Accepted, "failed to accepted", "interrupted")]
    [TestCase(IntakeState.Accepted, IntakeState.Interrupted, "accepted to interrupted", "nothing (final)")]
    [TestCase(IntakeState.Interrupted, IntakeState.Started, "interrupted to started", "nothing (final)")]
    [TestCase(IntakeState.Fetched, IntakeState.Fetched, "fetched to fetched", "verified, failed, interrupted")]
    public void A_refused_transition_names_its_code_and_what_is_allowed(IntakeState from, IntakeState to, string named, string allowed)
    {
        Assert.That(IntakeStateMachine.IsAllowed(from, to), Is.False);
        var e = Assert.Throws<IntakeTransitionException>(() => IntakeStateMachine.Ensure(Guid.Empty, from, to))!;
        Assert.That(e.Code, Is.EqualTo(IntakeStateMachine.IllegalCode).And.EqualTo("INTAKE-TRANSITION-ILLEGAL"));
        Assert.That(e.Message, Does.Contain(named).And.EndWith("allowed from " + named.Split(' ')[0] + ": " + allowed));
    }

    [Test]
    public void Each_step_runs_from_the_state_its_predecessor_left_and_leads_to_its_own()
    {
        var steps = new[] { "fetch", "verify", "scan", "publish", "build", "push" };
        Assert.That(steps.Select(IntakeStateMachine.Before), Is.EqualTo(new[]
            { IntakeState.Started, IntakeState.Fetched, IntakeState.Verified, IntakeState.Scanned, IntakeState.Published, IntakeState.Built }));
        Assert.That(steps.Select(IntakeStateMachine.After), Is.EqualTo(new[]
            { IntakeState.Fetched, IntakeState.Verified, IntakeState.Scanned, IntakeState.Published, IntakeState.Built, IntakeState.Pushed }));
        foreach (var step in steps) Assert.That(IntakeStateMachine.IsAllowed(IntakeStateMachine.Before(step), IntakeStateMachine.After(step)), step);
    }

    [Test]
    public void Unknown_steps_and_state_names_are_refused_with_their_codes()
    {
        Assert.That(Assert.Throws<IntakeTransitionException>(() => IntakeStateMachine.After("smoke"))!.Code, Is.EqualTo("INTAKE-STEP-UNKNOWN"));
        Assert.That(Assert.Throws<IntakeTransitionException>(() => IntakeStateMachine.Parse("3"))!.Code, Is.EqualTo("INTAKE-STATE-UNKNOWN"));
        Assert.That(Assert.Throws<IntakeTransitionException>(() => IntakeStateMachine.Parse("done"))!.Code, Is.EqualTo("INTAKE-STATE-UNKNOWN"));
        Assert.That(Enum.GetValues<IntakeState>().Select(s => IntakeStateMachine.Parse(IntakeStateMachine.Name(s))), Is.EqualTo(Enum.GetValues<IntakeState>()),
            "every state round-trips through its database name");
    }
}
