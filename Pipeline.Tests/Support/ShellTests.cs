namespace Pipeline.Tests.Support;

/// <summary>
/// The test process runner: a tool that exits without reading its input (EPIPE on our side) is
/// judged by its exit code, and large input and output in both directions never deadlock.
/// </summary>
public class ShellTests
{
    // Far more than a pipe buffer (64 KiB): the write cannot complete before the reader is gone.
    private static readonly string Large = new('x', 4 << 20);

    [Test]
    public void A_process_that_exits_without_reading_a_large_input_is_judged_by_its_exit_code()
    {
        var failed = Shell.Run("sh", ["-c", "echo refused >&2; exit 3"], stdin: Large);
        Assert.That(failed.ExitCode, Is.EqualTo(3));
        Assert.That(failed.Stderr, Is.EqualTo("refused\n"));
        Assert.That(failed.InputNotFullyRead, Is.True, "the tool did not read its input, and nothing threw");

        var succeeded = Shell.Run("true", [], stdin: Large);
        Assert.That((succeeded.ExitCode, succeeded.InputNotFullyRead), Is.EqualTo((0, true)));
    }

    [Test]
    public void A_process_that_reads_only_the_start_of_its_input_keeps_its_output()
    {
        var r = Shell.Run("head", ["-c", "5"], stdin: Large).EnsureSuccess("head");
        Assert.That(r.Stdout, Is.EqualTo("xxxxx"));
    }

    [Test]
    public void Bytes_runner_survives_a_process_that_exits_without_reading()
    {
        var (exit, stdout, stderr) = Shell.RunBytes("sh", ["-c", "printf out; exit 7"], Path.GetTempPath(), new byte[4 << 20],
            new Dictionary<string, string>());
        Assert.That(exit, Is.EqualTo(7));
        Assert.That(stdout, Is.EqualTo("out"u8.ToArray()));
        Assert.That(stderr, Is.Empty);
    }

    [Test]
    public void Large_input_and_large_output_on_both_streams_do_not_deadlock()
    {
        // tee copies 4 MiB to stdout and to stderr: every pipe fills up at once.
        var r = Shell.Run("sh", ["-c", "tee /dev/stderr"], stdin: Large, timeout: TimeSpan.FromSeconds(60)).EnsureSuccess("tee");
        Assert.That((r.Stdout.Length, r.Stderr.Length, r.InputNotFullyRead), Is.EqualTo((Large.Length, Large.Length, false)));
    }
}
