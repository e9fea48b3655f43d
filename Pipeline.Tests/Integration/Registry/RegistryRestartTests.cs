using Pipeline.Registry;
using Pipeline.Registry.Distribution;
using Pipeline.Registry.Model;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// A registry that forgot an upload session (restarted, or the session expired) answers the resume
/// with BLOB_UPLOAD_UNKNOWN/INVALID: the client starts a fresh upload instead of failing (REG-BLOB-005).
/// </summary>
[Category("Integration")]
[NonParallelizable]
public class RegistryRestartTests
{
    private static readonly RegistryClientOptions Small = new() { ChunkSize = 64 * 1024, ChunkedUploadThreshold = 64 * 1024 };

    [Test]
    public async Task Resuming_an_upload_session_the_registry_no_longer_knows_starts_a_fresh_upload()
    {
        var registry = TestServices.Require("PIPELINE_REGISTRY");
        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + registry)), Small);
        var content = System.Security.Cryptography.RandomNumberGenerator.GetBytes(200 * 1024);
        var blob = new Descriptor("application/octet-stream", Digest.Compute(content), content.Length);
        var repo = "pipeline-tests/resume-" + Guid.NewGuid().ToString("N")[..10];
        var gone = new Uri($"http://{registry}/v2/{repo}/blobs/uploads/{Guid.NewGuid()}?_state=forgotten");

        Assert.That(await client.PushBlobChunkedAsync(repo, blob, () => new MemoryStream(content), gone), Is.True);
        Assert.That(await client.BlobExistsAsync(repo, blob.Digest), Is.True);
    }

    [Test]
    public async Task A_registry_restarted_in_the_middle_of_a_chunked_upload_gets_the_blob_in_a_fresh_session()
    {
        using var registry = await RestartableRegistry.StartAsync();
        using var client = new RegistryClient(new RegistryEndpoint(new Uri("http://" + registry.HostPort)), Small);
        var content = System.Security.Cryptography.RandomNumberGenerator.GetBytes(512 * 1024);
        var blob = new Descriptor("application/octet-stream", Digest.Compute(content), content.Length);
        var restarted = 0;
        var opened = 0;
        // The first time the third chunk is read from the source, the registry is restarted (a new upload secret).
        Stream Open()
        {
            opened++;
            return new ActionAt(new MemoryStream(content), 2 * 64 * 1024, () =>
            {
                if (Interlocked.Exchange(ref restarted, 1) == 0) registry.RestartAsync().GetAwaiter().GetResult();
            });
        }

        Assert.That(await client.PushBlobChunkedAsync("pipeline-tests/restart", blob, Open), Is.True);
        Assert.That((restarted, opened), Is.EqualTo((1, 2)), "restarted once, then uploaded again from the start");
        Assert.That(await client.BlobExistsAsync("pipeline-tests/restart", blob.Digest), Is.True);
    }

    /// <summary>Runs an action once the reader has got past <paramref name="at"/> bytes.</summary>
    private sealed class ActionAt(Stream inner, long at, Action action) : Stream
    {
        private long _read;

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_read >= at) action();
            var n = inner.Read(buffer, offset, count);
            _read += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= at) action();
            var n = await inner.ReadAsync(buffer, cancellationToken);
            _read += n;
            return n;
        }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
