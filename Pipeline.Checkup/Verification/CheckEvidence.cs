namespace Pipeline.Checkup.Verification;

/// <summary>
/// One check the Engine records as evidence, e.g. <c>("checksums", true, "SHA256SUMS sha256:..., 42 files")</c>
/// or <c>("tag-signature", false, "CHK-SSH-005: key not on the allow-list")</c>. <see cref="Detail"/> must not
/// carry secrets.
/// </summary>
public sealed record CheckEvidence(string Check, bool Passed, string Detail);
