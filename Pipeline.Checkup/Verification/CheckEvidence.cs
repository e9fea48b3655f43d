namespace Pipeline.Checkup.Verification;

/// <summary>
/// One check the Engine records as evidence, e.g. <c>("checksums", true, "SHA256SUMS sha256:..., 42 files")</c>
/// or <c>("tag-signature", false, "CHK-SSH-005: key not on the allow-list")</c>. <see cref="Detail"/> must not
/// carry secrets.
/// </summary>
public sealed record CheckEvidence(string Check, bool Passed, string Detail);

/// <summary>The checks run on a delivery, in order. <see cref="Passed"/> only when there is at least one check and all passed.</summary>
public sealed record CheckReport(IReadOnlyList<CheckEvidence> Checks)
{
    public bool Passed => Checks.Count > 0 && Checks.All(c => c.Passed);
}
