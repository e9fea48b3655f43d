using Pipeline.Engine.Hosting;
using Pipeline.Engine.Ledger;
using Pipeline.Engine.Runs;
using Pipeline.Registry.Distribution;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cluster;

/// <summary>
/// kill -9 at exact points of a delivery (the test-only <see cref="UnsafeTestFault"/> hook), then
/// another node's pass: before the last stage is recorded the delivery is retried from the start;
/// after it, the same delivery is resumed (checkpoint, attestations attached once, accepted). Either
/// way: one accepted delivery, one image, one VCS B tag, a verifying ledger, nothing left behind.
/// </summary>
public class StageFaultTests : DeliveryFixture
{
    [TestCase("stage:fetch:after", false)]
    [TestCase("stage:publish:after", false)]
    [TestCase("stage:build:recorded", false)]
    [TestCase("stage:push:after", false)]
    [TestCase("stage:push:recorded", true)]
    [TestCase("accept:attached", true)]
    [CancelAfter(60_000)]
    public async Task Kill_9_at_a_fault_point_then_another_node_finishes_the_delivery_exactly_once(string point, bool resumed)
    {
        var s = Harness.NewScenario();
        s.WriteDefinition();
        s.WriteGoodDelivery();
        s.Publish("v1.0.0");
        var nodes = new ClusterNodes(s);
        using (var killed = EngineProcess.Start(["run", s.Name, "--config", nodes.Config("a")], _ => false, _ => { },
                   new Dictionary<string, string> { [UnsafeTestFault.Variable] = point }))
        {
            Assert.That(await killed.WaitAsync(TimeSpan.FromSeconds(45)), Is.EqualTo(137), killed.Log);
            Assert.That(killed.Log, Does.Contain("UNSAFE TEST FAULT " + UnsafeTestFault.Variable + "=" + point));
        }

        var ledger = new LedgerStore(Harness.Database.DataSource(), TimeProvider.System);
        var cut = (await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default)).Single();
        Assert.That(cut.Status, Is.EqualTo(DeliveryStatus.Running), "a killed node leaves its delivery running");

        var sink = new CapturingSink();
        await using (var other = await PipelineEngine.StartAsync(nodes.Config("b"), TimeProvider.System, sink.Logger(), default))
        {
            // The killed node's database session (and with it the pipeline's lock) ends when PostgreSQL notices the closed socket.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                try
                {
                    var report = await other.Runner.RunOnceAsync(other.Pipeline(s.Name), default);
                    Assert.That(report.Deliveries.Single().Status, Is.EqualTo(DeliveryStatus.Accepted), string.Join("\n", sink.Lines));
                    break;
                }
                catch (Pipeline.Engine.PipelineException e) when (e.Code == "RUN-BUSY" && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(200);
                }
            }
        }

        var rows = await ledger.FindDeliveriesAsync(s.Name, "v1.0.0", default);
        if (resumed)
        {
            Assert.That(rows.Select(r => (r.Id, r.Status)), Is.EqualTo(new[] { (cut.Id, DeliveryStatus.Accepted) }), "resumed, not started again");
            Assert.That(sink.Lines, Has.Some.Contains("resuming its acceptance"));
        }
        else
        {
            Assert.That(rows.Select(r => (r.Id, r.Status, r.Attempt)), Is.EqualTo(new[] { (cut.Id, DeliveryStatus.Retried, 1), (rows[^1].Id, DeliveryStatus.Accepted, 2) }));
            var last = (await ledger.ReadAsync(cut.Id, default))[^1].Record;
            Assert.That((last.Stage, last.ReasonCode), Is.EqualTo((StaleDeliveries.InterruptedStage, StaleDeliveries.Code)), "the cut-off attempt is recorded as interrupted");
        }

        // The killed node, started again, removes the work folder it left (the other node cannot reach its disk).
        Assert.That(Directory.GetDirectories(Path.Combine(nodes.WorkDir("a"), "runs")), Has.Length.EqualTo(1), "the killed node left its work folder");
        await using (var restarted = await PipelineEngine.StartAsync(nodes.Config("a"), TimeProvider.System, Serilog.Core.Logger.None, default))
            Assert.That((await restarted.Runner.RunOnceAsync(restarted.Pipeline(s.Name), default)).Deliveries, Is.Empty);
        await nodes.AssertExactlyOnceAsync(["v1.0.0"], "a", "b");
        // Every stage's attestation is attached to the image exactly once, also after a resumed acceptance.
        var accepted = rows.Single(r => r.Status == DeliveryStatus.Accepted);
        var stages = (await ledger.ReadAsync(accepted.Id, default)).Where(e => e.LogIndex is not null).Select(e => e.LogIndex!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        using var registry = new RegistryClient(new RegistryEndpoint(new Uri("http://" + Harness.Registry)));
        var image = accepted.Image!;
        var digest = Pipeline.Registry.Model.Digest.Parse(image[(image.IndexOf('@') + 1)..]);
        var attached = await registry.ListReferrersAsync(s.RegistryRepository, digest, DeliveryRunner.DsseArtifactType);
        Assert.That(attached.Select(d => d.Annotations![DeliveryRunner.LogIndexAnnotation]), Is.EquivalentTo(stages));
    }
}
