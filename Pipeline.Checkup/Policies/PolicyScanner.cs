using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Checkup.Scanning;

namespace Pipeline.Checkup.Policies;

/// <summary>
/// Scans a set of files with clamd under a <see cref="ScanProfile"/> of a <see cref="ScanPolicy"/>.
/// Over TCP each file is streamed once from disk to clamd (INSTREAM) while its SHA-256 and first
/// bytes are taken from the same stream. Over a Unix socket the file is opened here, the same open
/// descriptor is passed to clamd (FILDES) and hashed while clamd scans it, so clamd judges exactly
/// the hashed bytes and nothing is copied through the socket. Archives clamd calls clean are read once more by the
/// <see cref="Archives.ArchiveInspector"/> against <paramref name="clamdLimits"/> (read from clamd's configuration):
/// what clamd skipped silently is unscannable, never clean.
/// </summary>
public sealed class PolicyScanner(ClamdPool pool, ClamdLimits clamdLimits, TimeProvider time)
{
    private const long TwoGiB = 2L << 30;

    /// <summary>Called after each file's verdict (progress display; tests). Runs on scan threads.</summary>
    public Action<FileVerdict>? FileScanned { get; init; }
    private static readonly Regex DbDate = new(@"^ClamAV (?<engine>[0-9][^/]*)(/(?<db>\d+)/(?<date>.+))?$", RegexOptions.CultureInvariant);

    /// <summary>
    /// Scans <paramref name="relativePaths"/> ('/'-separated, under <paramref name="rootDir"/>). Findings are
    /// results; clamd being unreachable (every endpoint) throws <see cref="ClamdException"/>.
    /// </summary>
    public Task<ScanVerdict> ScanAsync(string rootDir, IReadOnlyList<string> relativePaths, ScanPolicy policy, string profileName, CancellationToken ct) =>
        ScanAsync(rootDir, relativePaths, policy, profileName, null, ct);

    /// <summary>
    /// <see cref="ScanAsync(string, IReadOnlyList{string}, ScanPolicy, string, CancellationToken)"/>, where
    /// <paramref name="scannedAhead"/> gives a file's verdict from <see cref="ScanFileAheadAsync"/> when it
    /// was scanned as soon as it was written (its failure is this scan's); a file it has no verdict for,
    /// or one whose size changed since, is scanned here.
    /// </summary>
    public async Task<ScanVerdict> ScanAsync(string rootDir, IReadOnlyList<string> relativePaths, ScanPolicy policy, string profileName,
        Func<string, Task<FileVerdict>?>? scannedAhead, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(relativePaths);
        ArgumentNullException.ThrowIfNull(policy);
        var profile = policy.Profile(profileName);
        var root = Path.GetFullPath(rootDir);
        foreach (var rel in relativePaths) CheckPath(rel);

        var clamdVersion = await pool.VersionAsync(ct).ConfigureAwait(false);
        var problems = new List<string>();
        var decision = ScanDecision.Accept;
        void Raise(PolicyAction action, string problem)
        {
            problems.Add(problem + (action == PolicyAction.Allow ? " (allowed by policy)" : ""));
            decision = Worst(decision, action);
        }

        CheckScanner(profile, clamdVersion, problems, ref decision);
        if (DatabaseAgeProblem(profile, clamdVersion, time.GetUtcNow()) is { } old)
        {
            problems.Add(old);
            decision = ScanDecision.Reject;
        }

        var sizes = relativePaths.ToDictionary(r => r, r => SizeOf(Path.Combine(root, r), r), StringComparer.Ordinal);
        if (relativePaths.Count > profile.MaxFiles)
            Raise(profile.OnLimitExceeded, $"{relativePaths.Count} files exceed the limit of {profile.MaxFiles} (maxFiles)");
        var total = sizes.Values.Sum();
        if (total > profile.MaxTotalSize)
            Raise(profile.OnLimitExceeded, $"{total} bytes in total exceed the limit of {profile.MaxTotalSize} bytes (maxTotalSize)");

        var now = time.GetUtcNow();
        var results = new ConcurrentBag<FileVerdict>();
        // Largest files first: the long scans start early, so the end of a delivery is not one big file on one
        // clamd thread while the others idle (results are sorted by path below, so the order is not visible).
        var largestFirst = relativePaths.OrderByDescending(p => sizes[p]).ThenBy(p => p, StringComparer.Ordinal).ToList();
        await Parallel.ForEachAsync(largestFirst, new ParallelOptions { MaxDegreeOfParallelism = pool.Parallelism, CancellationToken = ct },
            async (rel, token) =>
            {
                var early = scannedAhead?.Invoke(rel) is { } ahead ? await ahead.WaitAsync(token).ConfigureAwait(false) : null;
                var verdict = early is not null && early.Size == sizes[rel]
                    ? early
                    : await ScanFileAsync(root, rel, sizes[rel], policy, profile, now, token).ConfigureAwait(false);
                results.Add(verdict);
                FileScanned?.Invoke(verdict);
            })
            .ConfigureAwait(false);

        var files = results.OrderBy(r => r.Path, StringComparer.Ordinal).ToList();
        foreach (var f in files) decision = Worst(decision, f.Outcome);
        return new ScanVerdict(policy.Name, policy.Version, profile.Name, clamdVersion, decision, files, problems) { ClamdLimits = clamdLimits };
    }

    /// <summary>
    /// One file's verdict ahead of <see cref="ScanAsync"/>, judged exactly as there (clamd, the file's
    /// digest and type, the policy's rules for it) at <paramref name="now"/>: a delivery's files are
    /// handed to clamd as soon as each is written. The whole delivery's checks (clamd's version and
    /// signature age, counts and sizes) stay with <see cref="ScanAsync"/>.
    /// </summary>
    public Task<FileVerdict> ScanFileAheadAsync(string rootDir, string relativePath, ScanPolicy policy, string profileName, DateTimeOffset now, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(policy);
        CheckPath(relativePath);
        var root = Path.GetFullPath(rootDir);
        return ScanFileAsync(root, relativePath, SizeOf(Path.Combine(root, relativePath), relativePath), policy, policy.Profile(profileName), now, ct);
    }

    private async Task<FileVerdict> ScanFileAsync(string root, string rel, long size, ScanPolicy policy, ScanProfile profile, DateTimeOffset now, CancellationToken ct)
    {
        var full = Path.Combine(root, rel);
        // Files clamd cannot take are never streamed (clamd would only say "size limit exceeded").
        if (size > TwoGiB && !(profile.AllowFilesOver2GiB && profile.UnscannableLargeFiles == PolicyAction.Allow))
            return new FileVerdict(rel, null, size, FileType.Unknown, FileOutcome.Rejected, null,
                $"{size} bytes is over 2 GiB, which no clamd can scan; rejected unless the profile sets allowFilesOver2GiB and largerThanStreamMaxLength: allow");
        if (size > StreamLimit(profile))
        {
            var outcome = ToOutcome(profile.UnscannableLargeFiles);
            return new FileVerdict(rel, null, size, FileType.Unknown, outcome, null,
                $"{size} bytes is over clamd's StreamMaxLength ({StreamLimit(profile)}) so it was NOT scanned; largerThanStreamMaxLength: {Kebab(profile.UnscannableLargeFiles)}");
        }
        if (size > profile.MaxFileSize)
            return new FileVerdict(rel, null, size, FileType.Unknown, ToOutcome(profile.OnLimitExceeded), null,
                $"{size} bytes exceeds maxFileSize {profile.MaxFileSize}; onLimitExceeded: {Kebab(profile.OnLimitExceeded)}");

        ClamdScanResult result;
        string sha;
        FileType type;
        if (pool.CanPassFileDescriptors)
        {
            // clamd reads the very file we opened and hash (FILDES); no bytes go through the socket. The hash
            // reads with pread (RandomAccess, explicit offsets) while clamd scans the same descriptor, so the
            // file offset clamd may use is never moved and a file costs max(hash, scan), not their sum.
            using var handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            var hashing = Task.Run(() => HashAsync(handle, ct), ct);
            TeeStream? fallback = null;
            try
            {
                (result, _) = await pool.ScanAsync(() => fallback = new TeeStream(OpenStream(full)), handle, ct).ConfigureAwait(false);
            }
            catch
            {
                // The handle is disposed on the way out: let the hash finish first (its own failure is secondary).
                try { await hashing.ConfigureAwait(false); } catch (Exception) { /* the scan's exception is the one to report */ }
                throw;
            }
            (sha, type) = await hashing.ConfigureAwait(false);
            if (fallback is not null && fallback.Sha256Hex() != sha)
                return new FileVerdict(rel, sha, size, type, FileOutcome.Error, null, "the file changed while it was being scanned");
        }
        else
        {
            TeeStream? tee = null;
            (result, _) = await pool.ScanAsync(() => tee = new TeeStream(OpenStream(full)), ct).ConfigureAwait(false);
            sha = tee!.Sha256Hex();
            type = FileTypes.Detect(tee.Head);
        }

        FileVerdict V(FileOutcome o, string? detection, string reason) => new(rel, sha, size, type, o, detection, reason);

        if (result.Verdict == ClamdVerdict.Error)
            return V(FileOutcome.Error, null, $"clamd could not scan it ({result.RawReply}); a file that was not scanned is not accepted");

        if (result.Verdict == ClamdVerdict.Infected)
        {
            var detection = result.Signature!;
            var waiver = profile.ExceptionsAllowed
                ? policy.Exceptions.FirstOrDefault(e => e.Detection == detection && string.Equals(e.Sha256, sha, StringComparison.OrdinalIgnoreCase))
                : null;
            var expiredNote = "";
            if (waiver is not null && !waiver.IsExpired(now))
                return V(FileOutcome.Waived, detection,
                    $"{detection} waived by exception approved by {waiver.ApprovedBy} until {waiver.Expires:yyyy-MM-dd}: {waiver.Justification}");
            if (waiver is not null)
                expiredNote = $" (an exception for it, approved by {waiver.ApprovedBy}, EXPIRED on {waiver.Expires:yyyy-MM-dd}; it no longer waives anything)";
            else if (!profile.ExceptionsAllowed && policy.Exceptions.Any(e => e.Detection == detection && string.Equals(e.Sha256, sha, StringComparison.OrdinalIgnoreCase)))
                expiredNote = $" (profile {profile.Name} does not allow exceptions)";

            if (detection.StartsWith("Heuristics.Encrypted.", StringComparison.Ordinal))
            {
                var o = ToOutcome(profile.EncryptedContent);
                return V(o, detection, $"encrypted content ({detection}) cannot be scanned; encryptedContent: {Kebab(profile.EncryptedContent)}{expiredNote}");
            }
            if (detection.StartsWith("Heuristics.Broken", StringComparison.Ordinal) || detection.StartsWith("Heuristics.Limits.Exceeded", StringComparison.Ordinal))
            {
                var o = ToOutcome(profile.UnparsableContent);
                var unparsable = V(o, detection, $"clamd could not fully parse it ({detection}); unparsable: {Kebab(profile.UnparsableContent)}{expiredNote}");
                // clamd says a limit was hit somewhere; the inspector can say which member and which limit.
                return FileTypes.IsArchive(type) && o != FileOutcome.Allowed
                    ? await Task.Run(() => ArchiveRules.Judge(unparsable, full, profile, clamdLimits, time, ct), ct).ConfigureAwait(false)
                    : unparsable;
            }
            return V(FileOutcome.Infected, detection, $"malware: {detection}{expiredNote}");
        }

        // Clean by clamd: now the policy's own rules.
        foreach (var rule in profile.FileTypeRules)
        {
            if (rule.Deny.Contains(type) && rule.Paths.Any(g => g.IsMatch(rel)))
                return V(ToOutcome(rule.Action), null, $"{FileTypes.Name(type)} content is not allowed here (rule '{rule.Name}', paths {string.Join(", ", rule.Paths)})");
        }
        if (FileTypes.IsArchive(type))
            return await Task.Run(() => ArchiveRules.Judge(V(FileOutcome.Clean, null, "clean"), full, profile, clamdLimits, time, ct), ct).ConfigureAwait(false);
        return V(FileOutcome.Clean, null, "clean");
    }

    /// <summary>The smaller of the policy's idea of clamd's StreamMaxLength and clamd's configured one.</summary>
    private long StreamLimit(ScanProfile profile) => Math.Min(profile.ScannerStreamMaxLength, clamdLimits.StreamMaxLength);

    private static FileStream OpenStream(string full) => new(full, new FileStreamOptions
    {
        Mode = FileMode.Open, Access = FileAccess.Read, Share = FileShare.Read, BufferSize = 0,
        Options = FileOptions.Asynchronous | FileOptions.SequentialScan,
    });

    private static async Task<(string Sha256, FileType Type)> HashAsync(Microsoft.Win32.SafeHandles.SafeFileHandle handle, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
        try
        {
            long offset = 0;
            var type = FileType.Empty;
            int n;
            while ((n = await RandomAccess.ReadAsync(handle, buffer.AsMemory(0, 256 * 1024), offset, ct).ConfigureAwait(false)) > 0)
            {
                if (offset == 0) type = FileTypes.Detect(buffer.AsSpan(0, Math.Min(n, FileTypes.HeadLength)));
                hash.AppendData(buffer, 0, n);
                offset += n;
            }
            return (Convert.ToHexStringLower(hash.GetHashAndReset()), type);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void CheckScanner(ScanProfile profile, string clamdVersion, List<string> problems, ref ScanDecision decision)
    {
        var m = DbDate.Match(clamdVersion);
        if (profile.MinEngineVersion is { } min)
        {
            var engineText = m.Success ? new string(m.Groups["engine"].Value.TakeWhile(c => char.IsDigit(c) || c == '.').ToArray()) : "";
            if (!Version.TryParse(engineText, out var engine) || engine < min)
            {
                problems.Add($"clamd '{clamdVersion}' is older than minEngineVersion {min} (or does not say its version)");
                decision = ScanDecision.Reject;
            }
        }
    }

    /// <summary>The signature database age check, separate so the clock is injected.</summary>
    internal static string? DatabaseAgeProblem(ScanProfile profile, string clamdVersion, DateTimeOffset now)
    {
        if (profile.MaxDatabaseAge is not { } maxAge) return null;
        var m = DbDate.Match(clamdVersion);
        if (!m.Success || !m.Groups["date"].Success) return null; // custom databases only: clamd reports no date
        if (!DateTimeOffset.TryParseExact(m.Groups["date"].Value.Trim(), ["ddd MMM d HH:mm:ss yyyy", "ddd MMM dd HH:mm:ss yyyy"], CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AllowInnerWhite, out var dbDate))
            return $"clamd reports a database date this engine cannot read ('{m.Groups["date"].Value}')";
        return now - dbDate > maxAge ? $"the signature database of {dbDate:yyyy-MM-dd} is older than maxDatabaseAge {maxAge.TotalDays:0.#} days" : null;
    }

    private static long SizeOf(string full, string rel)
    {
        var info = new FileInfo(full);
        if (!info.Exists || info.LinkTarget is not null || (info.Attributes & FileAttributes.Directory) != 0)
            throw new CheckupException(ClamdErrors.BadFile, $"'{rel}' is missing or not a regular file; it cannot be scanned.");
        return info.Length;
    }

    private static void CheckPath(string rel)
    {
        if (string.IsNullOrEmpty(rel) || rel[0] == '/' || rel.Contains('\\') || rel.Contains('\0')
            || rel.Split('/').Any(s => s is "" or "." or ".."))
            throw new CheckupException(ClamdErrors.BadFile, $"'{rel}' is not a safe relative path under the delivery root.");
    }

    private static FileOutcome ToOutcome(PolicyAction a) => a switch
    {
        PolicyAction.Allow => FileOutcome.Allowed,
        PolicyAction.Quarantine => FileOutcome.Quarantine,
        _ => FileOutcome.Rejected,
    };

    private static ScanDecision Worst(ScanDecision d, PolicyAction a) => Worst(d, ToOutcome(a));

    private static ScanDecision Worst(ScanDecision d, FileOutcome o) => o switch
    {
        FileOutcome.Infected or FileOutcome.Error or FileOutcome.Rejected => ScanDecision.Reject,
        FileOutcome.Quarantine when d == ScanDecision.Accept => ScanDecision.Review,
        _ => d,
    };

    internal static string Kebab(PolicyAction a) => a.ToString().ToLowerInvariant();

    /// <summary>Passes a file through to clamd while hashing it and keeping its first bytes.</summary>
    private sealed class TeeStream(Stream inner) : Stream
    {
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private readonly byte[] _head = new byte[FileTypes.HeadLength];
        private int _headLength;
        private byte[]? _digest;

        public ReadOnlySpan<byte> Head => _head.AsSpan(0, _headLength);

        public string Sha256Hex() => Convert.ToHexStringLower(_digest ??= _hash.GetHashAndReset());

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Take(buffer.Span[..n]);
            return n;
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, count);
            Take(buffer.AsSpan(offset, n));
            return n;
        }

        private void Take(ReadOnlySpan<byte> data)
        {
            _hash.AppendData(data);
            if (_headLength < _head.Length)
            {
                var k = Math.Min(data.Length, _head.Length - _headLength);
                data[..k].CopyTo(_head.AsSpan(_headLength));
                _headLength += k;
            }
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                if (_digest is null) _digest = _hash.GetHashAndReset();
                _hash.Dispose();
            }
            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            Dispose(true);
            GC.SuppressFinalize(this);
        }
    }
}
