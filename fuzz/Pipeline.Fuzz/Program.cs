using Pipeline.Fuzz;
using SharpFuzz;

// Pipeline.Fuzz TARGET                 run under AFL++ (see fuzz/README.md), input on stdin
// Pipeline.Fuzz TARGET --replay DIR    run every file of DIR once (reproduce findings)
// Pipeline.Fuzz --list                 list the targets
if (args.Length == 0 || args[0] == "--list")
{
    foreach (var name in Targets.All.Keys) Console.WriteLine(name);
    return args.Length == 0 ? 2 : 0;
}

if (!Targets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"unknown target '{args[0]}'; --list shows them");
    return 2;
}

if (args.Length == 3 && args[1] == "--replay")
{
    foreach (var file in Directory.EnumerateFiles(args[2]).Order(StringComparer.Ordinal))
    {
        Console.WriteLine($"{file}: {(target(File.ReadAllBytes(file)) ? "accepted" : "rejected")}");
    }

    return 0;
}

Fuzzer.OutOfProcess.Run(stream =>
{
    using var ms = new MemoryStream();
    stream.CopyTo(ms);
    _ = target(ms.ToArray());
});
return 0;
