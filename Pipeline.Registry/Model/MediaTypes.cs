namespace Pipeline.Registry.Model;

/// <summary>Media types of the OCI image spec and the Docker v2 schema 2 types read from bases.</summary>
public static class MediaTypes
{
    public const string OciManifest = "application/vnd.oci.image.manifest.v1+json";
    public const string OciIndex = "application/vnd.oci.image.index.v1+json";
    public const string OciConfig = "application/vnd.oci.image.config.v1+json";
    public const string OciLayerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
    public const string OciLayerTarZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
    public const string OciLayerTar = "application/vnd.oci.image.layer.v1.tar";
    public const string OciEmpty = "application/vnd.oci.empty.v1+json";

    public const string DockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
    public const string DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json";
    public const string DockerConfig = "application/vnd.docker.container.image.v1+json";
    public const string DockerLayerTarGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// <summary>True for a single-image manifest type (OCI or Docker v2).</summary>
    public static bool IsManifest(string? mediaType) => mediaType is OciManifest or DockerManifest;

    /// <summary>True for an index / manifest list type.</summary>
    public static bool IsIndex(string? mediaType) => mediaType is OciIndex or DockerManifestList;

    /// <summary>True for an image config type.</summary>
    public static bool IsConfig(string? mediaType) => mediaType is OciConfig or DockerConfig;

    /// <summary>True for a layer type this library can read or write.</summary>
    public static bool IsLayer(string? mediaType) =>
        mediaType is OciLayerTarGzip or OciLayerTarZstd or OciLayerTar or DockerLayerTarGzip;
}
