namespace Pipeline.Checkup.Manifests;

/// <summary>Stable codes of manifest violations (what tests, the log and the portal refer to).</summary>
public static class ManifestCodes
{
    // Reading the files
    public const string InvalidYaml = "DEPLOY-MANIFEST-YAML-INVALID";
    public const string YamlAlias = "DEPLOY-MANIFEST-YAML-ALIAS";
    public const string YamlTag = "DEPLOY-MANIFEST-YAML-TAG";
    public const string YamlKey = "DEPLOY-MANIFEST-YAML-KEY";
    public const string YamlMergeKey = "DEPLOY-MANIFEST-YAML-MERGE-KEY";
    public const string YamlDuplicateKey = "DEPLOY-MANIFEST-YAML-DUPLICATE-KEY";
    public const string TooLarge = "DEPLOY-MANIFEST-TOO-LARGE";
    public const string TooManyDocuments = "DEPLOY-MANIFEST-TOO-MANY-DOCUMENTS";
    public const string TooDeep = "DEPLOY-MANIFEST-TOO-DEEP";
    public const string Symlink = "DEPLOY-MANIFEST-SYMLINK";
    public const string StrayFile = "DEPLOY-MANIFEST-STRAY-FILE";
    public const string NoManifests = "DEPLOY-MANIFEST-EMPTY";

    // Kustomize bases (safe subset: local resource files only)
    public const string KustomizeFeature = "DEPLOY-MANIFEST-KUSTOMIZE-FEATURE";
    public const string KustomizeRemote = "DEPLOY-MANIFEST-KUSTOMIZE-REMOTE";
    public const string KustomizeResource = "DEPLOY-MANIFEST-KUSTOMIZE-RESOURCE";

    // Objects
    public const string NotAnObject = "DEPLOY-MANIFEST-OBJECT";
    public const string DuplicateObject = "DEPLOY-MANIFEST-DUPLICATE-OBJECT";
    public const string KindNotAllowed = "DEPLOY-MANIFEST-KIND";
    public const string NoPodTemplate = "DEPLOY-MANIFEST-NO-POD-TEMPLATE";

    // Images
    public const string ImageForeign = "DEPLOY-MANIFEST-IMAGE-FOREIGN";
    public const string ImageUnpinned = "DEPLOY-MANIFEST-IMAGE-UNPINNED";
    public const string ImageMissing = "DEPLOY-MANIFEST-IMAGE-MISSING";

    // Pod Security Standard "restricted" (and the operator's read-only root rule)
    public const string HostProcess = "DEPLOY-MANIFEST-PSS-HOST-PROCESS";
    public const string HostNamespaces = "DEPLOY-MANIFEST-PSS-HOST-NAMESPACES";
    public const string Privileged = "DEPLOY-MANIFEST-PSS-PRIVILEGED";
    public const string CapabilitiesAdd = "DEPLOY-MANIFEST-PSS-CAPABILITIES-ADD";
    public const string CapabilitiesDrop = "DEPLOY-MANIFEST-PSS-CAPABILITIES-DROP";
    public const string HostPath = "DEPLOY-MANIFEST-PSS-HOST-PATH";
    public const string VolumeType = "DEPLOY-MANIFEST-PSS-VOLUME-TYPE";
    public const string HostPort = "DEPLOY-MANIFEST-PSS-HOST-PORT";
    public const string AppArmor = "DEPLOY-MANIFEST-PSS-APPARMOR";
    public const string SeLinux = "DEPLOY-MANIFEST-PSS-SELINUX";
    public const string ProcMount = "DEPLOY-MANIFEST-PSS-PROC-MOUNT";
    public const string Seccomp = "DEPLOY-MANIFEST-PSS-SECCOMP";
    public const string Sysctls = "DEPLOY-MANIFEST-PSS-SYSCTLS";
    public const string PrivilegeEscalation = "DEPLOY-MANIFEST-PSS-PRIVILEGE-ESCALATION";
    public const string RunAsNonRoot = "DEPLOY-MANIFEST-PSS-RUN-AS-NON-ROOT";
    public const string RunAsUserRoot = "DEPLOY-MANIFEST-PSS-RUN-AS-USER";
    public const string ReadOnlyRoot = "DEPLOY-MANIFEST-READ-ONLY-ROOT";
}
