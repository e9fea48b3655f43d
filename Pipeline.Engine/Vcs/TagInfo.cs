namespace Pipeline.Engine.Vcs;

/// <summary>A release tag as found in the supplier's repository.</summary>
/// <param name="Name">Tag name, e.g. <c>v1.4.2</c>.</param>
/// <param name="ObjectId">The tag object's id (annotated) or the target id (lightweight).</param>
/// <param name="IsAnnotated">False for lightweight tags, which are never accepted.</param>
public sealed record TagInfo(string Name, string ObjectId, bool IsAnnotated);

/// <summary>An annotated tag's fields, enough to rebuild its raw object byte for byte.</summary>
public sealed record AnnotatedTag(
    string Name,
    string ObjectId,
    string TargetId,
    string TargetType,
    string? Tagger,
    DateTimeOffset? TaggerTime,
    string Message,
    string CommitId,
    string TreeId);
