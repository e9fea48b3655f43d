using Pipeline.Engine.Quarantine;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Engine;

/// <summary>A full disk while a rejected delivery goes to quarantine: no half-written report, and the entry is still listed.</summary>
[Category("Integration")]
[NonParallelizable]
public class QuarantineDiskFullTests
{
    [Test]
    public void A_full_disk_leaves_no_half_written_report_and_list_shows_the_broken_entry()
    {
        using var dir = new TempDir("pipeline-qfull-");
        var work = dir.Combine("work");
        using var disk = new SmallTmpfs(work, "64k");
        var id = Guid.CreateVersion7();
        var run = Directory.CreateDirectory(Path.Combine(work, "runs", id.ToString("N"), "tree")).FullName;
        File.WriteAllText(Path.Combine(run, "app"), "rejected content");
        Fill(Path.Combine(work, "filler"));

        var store = new QuarantineStore(work, TimeProvider.System);
        var e = Assert.Throws<IOException>(() => store.Add("p", id, Path.GetDirectoryName(run)!, "v1.0.0", "abc", "scan", "SCAN-INFECTED", "malware"))!;
        Assert.That(e.HResult, Is.EqualTo(28), e.Message);

        var folder = Path.Combine(work, "quarantine", "p", id.ToString("N"));
        Assert.That(Directory.GetFiles(folder).Select(Path.GetFileName), Is.Empty, "neither a 0-byte report.json nor a temporary file");
        var listed = store.List().Single();
        Assert.That((listed.DeliveryId, listed.Code, listed.Problem), Is.EqualTo((id, "QUARANTINE-BROKEN", "report.json is missing")));
        Assert.That(File.ReadAllText(Path.Combine(folder, "tree", "app")), Is.EqualTo("rejected content"), "the files are kept");
    }

    [Test]
    public void An_empty_report_is_listed_as_broken_not_hidden()
    {
        using var dir = new TempDir("pipeline-qempty-");
        var id = Guid.CreateVersion7();
        var folder = Directory.CreateDirectory(dir.Combine("quarantine", "p", id.ToString("N"))).FullName;
        File.WriteAllBytes(Path.Combine(folder, QuarantineStore.ReportFile), []);

        var listed = new QuarantineStore(dir.Path, TimeProvider.System).List().Single();
        Assert.That((listed.DeliveryId, listed.Problem), Is.EqualTo((id, "report.json is empty (written when the disk was full?)")));
    }

    private static void Fill(string path)
    {
        using var fs = new FileStream(path, FileMode.CreateNew);
        var block = new byte[4096];
        try
        {
            while (true) fs.Write(block);
        }
        catch (IOException)
        {
            // full
        }
    }
}
