using System.Globalization;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Pipeline.Engine.Sbom;

/// <summary>A file placed in an image: where it is in the image and where its bytes are on disk.</summary>
public sealed record SbomFile(string ImagePath, string SourcePath);

/// <summary>A package found in the delivered files (from a lock or metadata file).</summary>
public sealed record SbomPackage(string Name, string Version, string Purl, string FoundIn);

/// <summary>What describes the SBOM's subject: image name, version, the time it was built (pinned) and the tool.</summary>
public sealed record SbomSubject(string ImageName, string Version, DateTimeOffset Created, string DocumentNamespace, string Tool = "pipeline");

/// <summary>
/// SPDX 2.3 JSON for the layers an image adds: every file with its SHA-256 (and SHA-1, which SPDX 2.3
/// requires), the packages found in .NET <c>*.deps.json</c>, Java <c>META-INF/maven/**/pom.properties</c>
/// and npm <c>package-lock.json</c>, and the relationships. Deterministic: the same files give the
/// same bytes (sorted, no clock read, ids derived from paths).
/// </summary>
public static class SpdxSbom
{
    /// <summary>Media type of the SBOM blob and artifact type of its referrer manifest.</summary>
    public const string MediaType = "application/spdx+json";

    private const long MaxMetadataBytes = 16 * 1024 * 1024;

    private static readonly JsonWriterOptions Writer = new() { Indented = false, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Builds the SPDX document (canonical UTF-8 JSON).</summary>
    public static byte[] Build(SbomSubject subject, IReadOnlyList<SbomFile> files, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(files);
        var sorted = files.OrderBy(f => f.ImagePath, StringComparer.Ordinal).ToArray();
        var hashed = new List<(SbomFile File, string Sha256, string Sha1, string Id)>(sorted.Length);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var f in sorted)
        {
            ct.ThrowIfCancellationRequested();
            var (sha256, sha1) = Hash(f.SourcePath);
            var id = "SPDXRef-File-" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(f.ImagePath)))[..16];
            if (!ids.Add(id)) throw new InvalidOperationException($"duplicate image path {f.ImagePath}");
            hashed.Add((f, sha256, sha1, id));
        }
        var packages = DetectPackages(sorted)
            .GroupBy(p => p.Purl, StringComparer.Ordinal).Select(g => g.OrderBy(p => p.FoundIn, StringComparer.Ordinal).First())
            .OrderBy(p => p.Purl, StringComparer.Ordinal).ToArray();

        var buffer = new System.Buffers.ArrayBufferWriter<byte>(64 * 1024);
        using (var w = new Utf8JsonWriter(buffer, Writer))
        {
            const string imageId = "SPDXRef-Image";
            w.WriteStartObject();
            w.WriteString("spdxVersion", "SPDX-2.3");
            w.WriteString("dataLicense", "CC0-1.0");
            w.WriteString("SPDXID", "SPDXRef-DOCUMENT");
            w.WriteString("name", $"{subject.ImageName}-{subject.Version}");
            w.WriteString("documentNamespace", subject.DocumentNamespace);
            w.WriteStartObject("creationInfo");
            w.WriteStartArray("creators");
            w.WriteStringValue("Tool: " + subject.Tool);
            w.WriteEndArray();
            w.WriteString("created", subject.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteEndObject();
            w.WriteStartArray("documentDescribes");
            w.WriteStringValue(imageId);
            w.WriteEndArray();

            w.WriteStartArray("packages");
            w.WriteStartObject();
            w.WriteString("SPDXID", imageId);
            w.WriteString("name", subject.ImageName);
            w.WriteString("versionInfo", subject.Version);
            w.WriteString("primaryPackagePurpose", "CONTAINER");
            w.WriteString("downloadLocation", "NOASSERTION");
            w.WriteBoolean("filesAnalyzed", true);
            w.WriteStartObject("packageVerificationCode");
            w.WriteString("packageVerificationCodeValue", VerificationCode(hashed.Select(h => h.Sha1)));
            w.WriteEndObject();
            w.WriteStartArray("hasFiles");
            foreach (var h in hashed) w.WriteStringValue(h.Id);
            w.WriteEndArray();
            w.WriteString("licenseConcluded", "NOASSERTION");
            w.WriteString("licenseDeclared", "NOASSERTION");
            w.WriteString("copyrightText", "NOASSERTION");
            w.WriteEndObject();
            var pkgIds = new List<string>();
            foreach (var p in packages)
            {
                var pid = "SPDXRef-Package-" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(p.Purl)))[..16];
                pkgIds.Add(pid);
                w.WriteStartObject();
                w.WriteString("SPDXID", pid);
                w.WriteString("name", p.Name);
                w.WriteString("versionInfo", p.Version);
                w.WriteString("downloadLocation", "NOASSERTION");
                w.WriteBoolean("filesAnalyzed", false);
                w.WriteString("sourceInfo", "found in " + p.FoundIn);
                w.WriteString("licenseConcluded", "NOASSERTION");
                w.WriteString("licenseDeclared", "NOASSERTION");
                w.WriteString("copyrightText", "NOASSERTION");
                w.WriteStartArray("externalRefs");
                w.WriteStartObject();
                w.WriteString("referenceCategory", "PACKAGE-MANAGER");
                w.WriteString("referenceType", "purl");
                w.WriteString("referenceLocator", p.Purl);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("files");
            foreach (var h in hashed)
            {
                w.WriteStartObject();
                w.WriteString("SPDXID", h.Id);
                w.WriteString("fileName", "." + h.File.ImagePath);
                w.WriteStartArray("checksums");
                w.WriteStartObject();
                w.WriteString("algorithm", "SHA1");
                w.WriteString("checksumValue", h.Sha1);
                w.WriteEndObject();
                w.WriteStartObject();
                w.WriteString("algorithm", "SHA256");
                w.WriteString("checksumValue", h.Sha256);
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteString("licenseConcluded", "NOASSERTION");
                w.WriteString("copyrightText", "NOASSERTION");
                w.WriteEndObject();
            }
            w.WriteEndArray();

            w.WriteStartArray("relationships");
            Relationship(w, "SPDXRef-DOCUMENT", "DESCRIBES", imageId);
            foreach (var h in hashed) Relationship(w, imageId, "CONTAINS", h.Id);
            foreach (var pid in pkgIds) Relationship(w, imageId, "CONTAINS", pid);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void Relationship(Utf8JsonWriter w, string from, string type, string to)
    {
        w.WriteStartObject();
        w.WriteString("spdxElementId", from);
        w.WriteString("relationshipType", type);
        w.WriteString("relatedSpdxElement", to);
        w.WriteEndObject();
    }

    /// <summary>SPDX package verification code: SHA-1 over the sorted, concatenated file SHA-1s.</summary>
    private static string VerificationCode(IEnumerable<string> sha1s) =>
        Convert.ToHexStringLower(SHA1.HashData(System.Text.Encoding.ASCII.GetBytes(string.Concat(sha1s.OrderBy(s => s, StringComparer.Ordinal)))));

    private static (string Sha256, string Sha1) Hash(string path)
    {
        using var sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = stream.Read(buffer)) > 0)
        {
            sha256.AppendData(buffer, 0, n);
            sha1.AppendData(buffer, 0, n);
        }
        return (Convert.ToHexStringLower(sha256.GetHashAndReset()), Convert.ToHexStringLower(sha1.GetHashAndReset()));
    }

    /// <summary>Packages from the metadata files among <paramref name="files"/>; malformed files are skipped (they are data, not instructions).</summary>
    public static IReadOnlyList<SbomPackage> DetectPackages(IEnumerable<SbomFile> files)
    {
        var result = new List<SbomPackage>();
        foreach (var f in files)
        {
            var name = f.ImagePath[(f.ImagePath.LastIndexOf('/') + 1)..];
            try
            {
                if (name.EndsWith(".deps.json", StringComparison.OrdinalIgnoreCase)) result.AddRange(DotNet(f));
                else if (name == "pom.properties" && f.ImagePath.Contains("/META-INF/maven/", StringComparison.Ordinal)) result.AddRange(Maven(f));
                else if (name == "package-lock.json") result.AddRange(Npm(f));
            }
            catch (Exception ex) when (ex is JsonException or IOException or InvalidOperationException or FormatException)
            {
                // A malformed metadata file yields no packages; the file itself is still listed.
            }
        }
        return result;
    }

    private static JsonDocument? ReadJson(SbomFile f)
    {
        var info = new FileInfo(f.SourcePath);
        if (info.Length > MaxMetadataBytes) return null;
        return JsonDocument.Parse(File.ReadAllBytes(f.SourcePath), new JsonDocumentOptions { MaxDepth = 64 });
    }

    private static IEnumerable<SbomPackage> DotNet(SbomFile f)
    {
        using var doc = ReadJson(f);
        if (doc is null || !doc.RootElement.TryGetProperty("libraries", out var libs) || libs.ValueKind != JsonValueKind.Object) return [];
        var list = new List<SbomPackage>();
        foreach (var lib in libs.EnumerateObject())
        {
            if (lib.Value.ValueKind != JsonValueKind.Object) continue;
            var type = lib.Value.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type != "package") continue; // "project" entries are the application itself
            var slash = lib.Name.IndexOf('/');
            if (slash <= 0 || slash == lib.Name.Length - 1) continue;
            var (n, v) = (lib.Name[..slash], lib.Name[(slash + 1)..]);
            list.Add(new SbomPackage(n, v, $"pkg:nuget/{Uri.EscapeDataString(n)}@{Uri.EscapeDataString(v)}", f.ImagePath));
        }
        return list;
    }

    private static IEnumerable<SbomPackage> Maven(SbomFile f)
    {
        if (new FileInfo(f.SourcePath).Length > MaxMetadataBytes) return [];
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var raw in File.ReadLines(f.SourcePath))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] is '#' or '!') continue;
            var eq = line.IndexOfAny(['=', ':']);
            if (eq <= 0) continue;
            props[line[..eq].Trim()] = line[(eq + 1)..].Trim();
        }
        if (!props.TryGetValue("groupId", out var g) || !props.TryGetValue("artifactId", out var a) || !props.TryGetValue("version", out var v)) return [];
        if (g.Length == 0 || a.Length == 0 || v.Length == 0) return [];
        return [new SbomPackage($"{g}:{a}", v, $"pkg:maven/{Uri.EscapeDataString(g)}/{Uri.EscapeDataString(a)}@{Uri.EscapeDataString(v)}", f.ImagePath)];
    }

    private static IEnumerable<SbomPackage> Npm(SbomFile f)
    {
        using var doc = ReadJson(f);
        if (doc is null || doc.RootElement.ValueKind != JsonValueKind.Object) return [];
        var list = new List<SbomPackage>();
        if (doc.RootElement.TryGetProperty("packages", out var packages) && packages.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in packages.EnumerateObject())
            {
                const string marker = "node_modules/";
                var at = p.Name.LastIndexOf(marker, StringComparison.Ordinal);
                if (at < 0 || p.Value.ValueKind != JsonValueKind.Object) continue; // "" is the root project
                if (p.Value.TryGetProperty("link", out var link) && link.ValueKind == JsonValueKind.True) continue;
                var name = p.Name[(at + marker.Length)..];
                if (!p.Value.TryGetProperty("version", out var ver) || ver.ValueKind != JsonValueKind.String) continue;
                list.Add(NpmPackage(name, ver.GetString()!, f.ImagePath));
            }
        }
        else if (doc.RootElement.TryGetProperty("dependencies", out var deps) && deps.ValueKind == JsonValueKind.Object)
        {
            void Walk(JsonElement d, int depth)
            {
                if (depth > 32) return;
                foreach (var p in d.EnumerateObject())
                {
                    if (p.Value.ValueKind != JsonValueKind.Object) continue;
                    if (p.Value.TryGetProperty("version", out var ver) && ver.ValueKind == JsonValueKind.String)
                        list.Add(NpmPackage(p.Name, ver.GetString()!, f.ImagePath));
                    if (p.Value.TryGetProperty("dependencies", out var inner) && inner.ValueKind == JsonValueKind.Object) Walk(inner, depth + 1);
                }
            }
            Walk(deps, 0);
        }
        return list;
    }

    private static SbomPackage NpmPackage(string name, string version, string foundIn)
    {
        var purlName = name.StartsWith('@') && name.IndexOf('/') is var s and > 0
            ? "%40" + Uri.EscapeDataString(name[1..s]) + "/" + Uri.EscapeDataString(name[(s + 1)..])
            : Uri.EscapeDataString(name);
        return new SbomPackage(name, version, $"pkg:npm/{purlName}@{Uri.EscapeDataString(version)}", foundIn);
    }
}
