namespace Pipeline.Registry.Layers;

/// <summary>Writes everything to two streams, first then second; disposes neither.</summary>
internal sealed class TeeStream(Stream first, Stream second) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Flush()
    {
        first.Flush();
        second.Flush();
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        await first.FlushAsync(cancellationToken).ConfigureAwait(false);
        await second.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        first.Write(buffer, offset, count);
        second.Write(buffer, offset, count);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await first.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await second.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    protected override void Dispose(bool disposing)
    {
    }
}
