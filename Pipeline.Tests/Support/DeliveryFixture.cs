namespace Pipeline.Tests.Support;

/// <summary>Base of test fixtures that run whole deliveries: one <see cref="DeliveryHarness"/> per fixture.</summary>
[Category("Integration")]
[NonParallelizable]
public abstract class DeliveryFixture
{
    protected DeliveryHarness Harness { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task CreateHarness() => Harness = await DeliveryHarness.CreateAsync();

    [OneTimeTearDown]
    public async Task DisposeHarness()
    {
        if (Harness is not null) await Harness.DisposeAsync();
    }
}
