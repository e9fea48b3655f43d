return Pipeline.Engine.Cli.PipelineCli.Run(args);
