using System.Security.Cryptography;
using System.Text.Json;
using Pipeline.Engine.Sbom;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Engine.Sbom;

public class SpdxSbomTests
{
    private static readonly SbomSubject Subject = new("apps/demo/hello", "v1.0.0", new DateTimeOffset(2024, 6, 1, 8, 30, 0, TimeSpan.Zero), "https://spdx.pipeline.invalid/apps/demo/hello/v1.0.0/x");

    private static List<SbomFile> Files(TempDir t)
    {
        Directory.CreateDirectory(t.Combine("app", "META-INF", "maven", "org.example", "lib"));
        Directory.CreateDirectory(t.Combine("web"));
        File.WriteAllText(t.Combine("app", "hello"), "#!/bin/sh\necho hi\n");
        File.WriteAllText(t.Combine("app", "Hello.deps.json"), """
            {"runtimeTarget":{"name":".NETCoreApp,Version=v8.0"},
             "libraries":{"Hello/1.0.0":{"type":"project"},"Newtonsoft.Json/13.0.3":{"type":"package","sha512":"x"},"Serilog/4.0.0":{"type":"package"}}}
            """);
        File.WriteAllText(t.Combine("app", "META-INF", "maven", "org.example", "lib", "pom.properties"), "#Generated\ngroupId=org.example\nartifactId=lib\nversion=2.1.0\n");
        File.WriteAllText(t.Combine("web", "package-lock.json"), """
            {"name":"web","lockfileVersion":3,"packages":{"":{"name":"web"},"node_modules/left-pad":{"version":"1.3.0"},"node_modules/@scope/util":{"version":"0.2.0"},"node_modules/a/node_modules/b":{"version":"4.0.0"}}}
            """);
        return
        [
            new("/opt/app/hello", t.Combine("app", "hello")),
            new("/opt/app/Hello.deps.json", t.Combine("app", "Hello.deps.json")),
            new("/opt/app/lib.jar.d/META-INF/maven/org.example/lib/pom.properties", t.Combine("app", "META-INF", "maven", "org.example", "lib", "pom.properties")),
            new("/srv/web/package-lock.json", t.Combine("web", "package-lock.json")),
        ];
    }

    [Test]
    public void The_sbom_with_files_and_detected_packages_is_a_valid_spdx_2_3_document()
    {
        using var t = new TempDir();
        JsonSchemas.AssertSpdx(SpdxSbom.Build(Subject, Files(t)));
        JsonSchemas.AssertSpdx(SpdxSbom.Build(Subject, []), "SBOM of an image without delivered files");
    }

    [Test]
    public void Every_file_is_listed_with_its_sha256()
    {
        using var t = new TempDir();
        var files = Files(t);
        using var doc = JsonDocument.Parse(SpdxSbom.Build(Subject, files));
        var root = doc.RootElement;
        Assert.That(root.GetProperty("spdxVersion").GetString(), Is.EqualTo("SPDX-2.3"));
        Assert.That(root.GetProperty("creationInfo").GetProperty("created").GetString(), Is.EqualTo("2024-06-01T08:30:00Z"));
        var listed = root.GetProperty("files").EnumerateArray().ToDictionary(
            f => f.GetProperty("fileName").GetString()!,
            f => f.GetProperty("checksums").EnumerateArray().Single(c => c.GetProperty("algorithm").GetString() == "SHA256").GetProperty("checksumValue").GetString());
        Assert.That(listed.Keys, Is.EquivalentTo(files.Select(f => "." + f.ImagePath)));
        foreach (var f in files)
            Assert.That(listed["." + f.ImagePath], Is.EqualTo(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(f.SourcePath)))), f.ImagePath);
        var image = root.GetProperty("packages")[0];
        Assert.That(image.GetProperty("primaryPackagePurpose").GetString(), Is.EqualTo("CONTAINER"));
        Assert.That(image.GetProperty("hasFiles").GetArrayLength(), Is.EqualTo(files.Count));
    }

    [Test]
    public void Packages_come_from_deps_json_pom_properties_and_package_lock()
    {
        using var t = new TempDir();
        using var doc = JsonDocument.Parse(SpdxSbom.Build(Subject, Files(t)));
        var purls = doc.RootElement.GetProperty("packages").EnumerateArray().Skip(1)
            .Select(p => p.GetProperty("externalRefs")[0].GetProperty("referenceLocator").GetString()).ToArray();
        Assert.That(purls, Is.EquivalentTo(new[]
        {
            "pkg:nuget/Newtonsoft.Json@13.0.3", "pkg:nuget/Serilog@4.0.0", "pkg:maven/org.example/lib@2.1.0",
            "pkg:npm/left-pad@1.3.0", "pkg:npm/%40scope/util@0.2.0", "pkg:npm/b@4.0.0",
        }), "the 'project' library of deps.json and the root of package-lock.json are not packages");
        var rels = doc.RootElement.GetProperty("relationships").EnumerateArray().Count(r => r.GetProperty("relationshipType").GetString() == "CONTAINS");
        Assert.That(rels, Is.EqualTo(4 + 6));
    }

    [Test]
    public void Same_files_give_the_same_bytes_and_a_changed_byte_changes_the_document()
    {
        using var t = new TempDir();
        var files = Files(t);
        var first = SpdxSbom.Build(Subject, files);
        Assert.That(SpdxSbom.Build(Subject, files.AsEnumerable().Reverse().ToList()), Is.EqualTo(first), "order of input does not matter");
        File.AppendAllText(files[0].SourcePath, "!");
        Assert.That(SpdxSbom.Build(Subject, files), Is.Not.EqualTo(first));
    }

    [Test]
    public void Malformed_metadata_yields_no_packages_but_the_file_is_still_listed()
    {
        using var t = new TempDir();
        File.WriteAllText(t.Combine("broken.deps.json"), "{ not json");
        File.WriteAllText(t.Combine("pom.properties"), "groupId=only\n");
        var files = new List<SbomFile> { new("/a/broken.deps.json", t.Combine("broken.deps.json")), new("/b/META-INF/maven/x/y/pom.properties", t.Combine("pom.properties")) };
        Assert.That(SpdxSbom.DetectPackages(files), Is.Empty);
        using var doc = JsonDocument.Parse(SpdxSbom.Build(Subject, files));
        Assert.That(doc.RootElement.GetProperty("files").GetArrayLength(), Is.EqualTo(2));
    }
}
