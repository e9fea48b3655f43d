namespace Pipeline.Engine.Cli;

public static class PipelineCli
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("pipeline: not wired yet");
        return 2;
    }
}
