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
/// Fulcio CAs and timestamp authorities with their validity windows.
/// </summary>
public sealed record TrustedRoot(
    IReadOnlyList<TransparencyLogInfo> Tlogs,
    IReadOnlyList<TransparencyLogInfo> Ctlogs,
    IReadOnlyList<CertificateAuthorityInfo> CertificateAuthorities,
    IReadOnlyList<CertificateAuthorityInfo> TimestampAuthorities)
{
    private const string C = SigstoreCodes.TrustedRootMalformed;

    /// <summary>Parses and validates a trusted root JSON document; throws CheckupException (SIG-SIGSTORE-TRUSTED-ROOT-MALFORMED).</summary>
    public static TrustedRoot Parse(string json)
    {
        using var doc = ParseDocument(json, C, "Trusted root");
        var root = doc.RootElement;
        var mt = OptStr(root, "mediaType", C, "trustedRoot");
        if (mt is not null && !mt.StartsWith("application/vnd.dev.sigstore.trustedroot", StringComparison.Ordinal))
            throw new CheckupException(C, $"Trusted root has unknown mediaType '{mt}'.");
        var tlogs = Arr(root, "tlogs", C, "trustedRoot").Select((e, i) => ParseLog(e, $"tlogs[{i}]")).ToList();
        var ctlogs = Arr(root, "ctlogs", C, "trustedRoot").Select((e, i) => ParseLog(e, $"ctlogs[{i}]")).ToList();
        var cas = Arr(root, "certificateAuthorities", C, "trustedRoot").Select((e, i) => ParseCa(e, $"certificateAuthorities[{i}]")).ToList();
        var tsas = Arr(root, "timestampAuthorities", C, "trustedRoot").Select((e, i) => ParseCa(e, $"timestampAuthorities[{i}]")).ToList();
        return new TrustedRoot(tlogs, ctlogs, cas, tsas);
    }

    /// <summary>Transparency logs whose key id equals <paramref name="logId"/>.</summary>
    public IEnumerable<TransparencyLogInfo> FindTlogs(ReadOnlySpan<byte> logId)
    {
        var id = logId.ToArray();
        return Tlogs.Where(l => l.LogId.AsSpan().SequenceEqual(id)).ToList();
    }

    private static TransparencyLogInfo ParseLog(JsonElement e, string path)
    {
        var baseUrl = OptStr(e, "baseUrl", C, path) ?? "";
        var pk = ReqObj(e, "publicKey", C, path);
        var raw = ReqB64(pk, "rawBytes", C, path + ".publicKey");
        var details = OptStr(pk, "keyDetails", C, path + ".publicKey") ?? "";
        var window = ParseWindow(pk, path + ".publicKey");
        var logId = ReqB64(ReqObj(e, "logId", C, path), "keyId", C, path + ".logId");
        return new TransparencyLogInfo(baseUrl, logId, raw, details, window);
    }

    private static CertificateAuthorityInfo ParseCa(JsonElement e, string path)
    {
        var uri = OptStr(e, "uri", C, path) ?? "";
        var subj = OptObj(e, "subject", C, path);
        var subject = subj is { } s ? $"O={OptStr(s, "organization", C, path)}, CN={OptStr(s, "commonName", C, path)}" : "";
        var chain = Arr(ReqObj(e, "certChain", C, path), "certificates", C, path + ".certChain", 10)
            .Select((c, i) => ReqB64(c, "rawBytes", C, $"{path}.certChain.certificates[{i}]")).ToList();
        if (chain.Count == 0) throw new CheckupException(C, $"{path}.certChain has no certificates.");
        return new CertificateAuthorityInfo(uri, subject, chain, ParseWindow(e, path));
    }

    private static TimeWindow ParseWindow(JsonElement e, string path)
    {
        var v = OptObj(e, "validFor", C, path);
        if (v is null) return new TimeWindow(null, null);
        return new TimeWindow(OptTime(v.Value, "start", C, path + ".validFor"), OptTime(v.Value, "end", C, path + ".validFor"));
    }
}
