using Pipeline.Checkup.Checksums;
using Pipeline.Engine.Quarantine;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Checkup.Checksums;

/// <summary>
/// No recursive walk may leave the tree through a symbolic link. (.NET's own recursive
/// enumeration follows links to folders; a test that linked to /etc once made a cleanup chmod
/// every folder of /etc.)
/// </summary>
public class FileTreeTests
{
    private static (TempDir Tree, TempDir Outside) TreeWithLinkOut()
    {
        var outside = new TempDir("pipeline-outside-");
        File.WriteAllText(outside.Combine("secret.txt"), "outside");
        Directory.CreateDirectory(outside.Combine("sub"));
        File.SetUnixFileMode(outside.Path, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(outside.Combine("sub"), (UnixFileMode)0b111_111_101);
        var tree = new TempDir("pipeline-tree-");
        Directory.CreateDirectory(tree.Combine("a", "b"));
        File.WriteAllText(tree.Combine("a", "b", "f.txt"), "x");
        Directory.CreateSymbolicLink(tree.Combine("a", "escape"), outside.Path);
        return (tree, outside);
    }

    [Test]
    public void Enumerate_lists_a_link_but_never_descends_into_it()
    {
        var (tree, outside) = TreeWithLinkOut();
        using (tree)
        using (outside)
        {
            var seen = FileTree.Enumerate(tree.Path).Select(e => Path.GetRelativePath(tree.Path, e.FullName)).ToList();
            Assert.That(seen, Is.EqualTo(new[] { "a", "a/b", "a/escape", "a/b/f.txt" }));
        }
    }

    [Test]
    public void Cleaning_up_a_temp_folder_leaves_a_linked_outside_folder_alone()
    {
        var (tree, outside) = TreeWithLinkOut();
        using (outside)
        {
            tree.Dispose();
            Assert.That(File.GetUnixFileMode(outside.Path), Is.EqualTo((UnixFileMode)0b111_101_101));
            Assert.That(File.GetUnixFileMode(outside.Combine("sub")), Is.EqualTo((UnixFileMode)0b111_111_101));
            Assert.That(File.Exists(outside.Combine("secret.txt")), Is.True);
        }
    }

    [Test]
    public void Quarantining_a_tree_with_a_link_makes_only_the_quarantine_read_only()
    {
        var (tree, outside) = TreeWithLinkOut();
        using var work = new TempDir("pipeline-work-");
        using (outside)
        {
            var store = new QuarantineStore(work.Path, TimeProvider.System);
            var dir = store.Add("p", Guid.CreateVersion7(), tree.Path, "v1.0.0", new string('a', 40), "verify", "X-1", "because");
            Assert.That(File.GetUnixFileMode(Path.Combine(dir, "a", "b", "f.txt")) & UnixFileMode.UserWrite, Is.EqualTo((UnixFileMode)0), "the quarantine is read-only");
            Assert.That(File.GetUnixFileMode(outside.Combine("sub")), Is.EqualTo((UnixFileMode)0b111_111_101), "a folder reached through a link is not touched");
            Assert.That(File.GetUnixFileMode(outside.Combine("secret.txt")) & UnixFileMode.UserWrite, Is.EqualTo(UnixFileMode.UserWrite));
        }
    }
}
