using System.Text.Json;
using static Pipeline.Checkup.Signatures.Sigstore.SigstoreJson;

namespace Pipeline.Checkup.Signatures.Sigstore;

/// <summary>A closed time interval; a missing bound is open. Both ends are inclusive.</summary>
public sealed record TimeWindow(DateTimeOffset? Start, DateTimeOffset? End)
{
    /// <summary>True if <paramref name="t"/> lies in [Start, End].</summary>
    public bool Contains(DateTimeOffset t) => (Start is null || t >= Start) && (End is null || t <= End);

    /// <inheritdoc />
    public override string ToString() => $"[{Start?.ToString("O") ?? "-inf"}, {End?.ToString("O") ?? "+inf"}]";
}

/// <summary>A transparency log or CT log: its key (SPKI DER), key id and validity window.</summary>
public sealed record TransparencyLogInfo(string BaseUrl, byte[] LogId, byte[] PublicKeySpki, string KeyDetails, TimeWindow ValidFor)
{
    /// <summary>Host (and non-default port) of <see cref="BaseUrl"/>, used as the signed-note signer name.</summary>
    public string Host => Uri.TryCreate(BaseUrl, UriKind.Absolute, out var u) ? u.Authority : BaseUrl;
}

/// <summary>A certificate authority (Fulcio) or timestamp authority: chain leaf/intermediates first, root last.</summary>
public sealed record CertificateAuthorityInfo(string Uri, string Subject, IReadOnlyList<byte[]> CertChain, TimeWindow ValidFor);

/// <summary>
/// A Sigstore trusted root (protobuf-specs <c>TrustedRoot</c> JSON): Rekor logs, CT logs,
/// Fulcio CAs and timestamp authorities with their validity windows. <see cref="Parse"/> refuses
/// a root with any incomplete entry (see <see cref="TrustedRootRules"/> for the rule per field):
/// a missing bound or key is never read as "anything goes".
/// </summary>
public sealed record TrustedRoot(
    IReadOnlyList<TransparencyLogInfo> Tlogs,
    IReadOnlyList<TransparencyLogInfo> Ctlogs,
    IReadOnlyList<CertificateAuthorityInfo> CertificateAuthorities,
    IReadOnlyList<CertificateAuthorityInfo> TimestampAuthorities)
{
    /// <summary>
    /// Parses and validates a trusted root JSON document. Every problem found is collected; if there
    /// is any, throws one CheckupException (SIG-SIGSTORE-TRUSTED-ROOT-MALFORMED) naming each field path.
    /// </summary>
    public static TrustedRoot Parse(string json)
    {
        using var doc = ParseDocument(json, SigstoreCodes.TrustedRootMalformed, "Trusted root");
        var rules = new TrustedRootRules();
        var root = doc.RootElement;
        rules.MediaType(root);
        var tlogs = rules.Each(root, "tlogs", (e, p) => rules.Log(e, p, isRekor: true));
        var ctlogs = rules.Each(root, "ctlogs", (e, p) => rules.Log(e, p, isRekor: false));
        var cas = rules.Each(root, "certificateAuthorities", rules.Authority);
        var tsas = rules.Each(root, "timestampAuthorities", rules.Authority);
        rules.ThrowIfAny();
        return new TrustedRoot(tlogs, ctlogs, cas, tsas);
    }

    /// <summary>Transparency logs whose key id equals <paramref name="logId"/>.</summary>
    public IEnumerable<TransparencyLogInfo> FindTlogs(ReadOnlySpan<byte> logId)
    {
        var id = logId.ToArray();
        return Tlogs.Where(l => l.LogId.AsSpan().SequenceEqual(id)).ToList();
    }
}
