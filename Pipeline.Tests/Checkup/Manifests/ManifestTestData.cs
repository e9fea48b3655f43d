using System.Text.RegularExpressions;
using Pipeline.Checkup.Manifests;

namespace Pipeline.Tests.Checkup.Manifests;

/// <summary>Manifests for the checker tests; <c>#&gt; CODE</c> at the end of a line marks where a violation is expected.</summary>
internal static class ManifestTestData
{
    public const string Pinned = "127.0.0.1:5000/stage/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    /// <summary>A Deployment that meets the restricted standard and the read-only root rule.</summary>
    public const string GoodDeployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          labels: {app: web}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: web}
          template:
            metadata:
              labels: {app: web}
            spec:
              securityContext:
                runAsNonRoot: true
                runAsUser: 10001
                seccompProfile: {type: RuntimeDefault}
              volumes:
                - name: tmp
                  emptyDir: {}
                - name: config
                  configMap: {name: web-config}
              containers:
                - name: web
                  image: web
                  ports:
                    - containerPort: 8080
                  resources:
                    limits: {cpu: 500m, memory: 256Mi}
                  env:
                    - name: LOG_LEVEL
                      value: info
                    - name: DB_PASSWORD
                      valueFrom:
                        secretKeyRef: {name: web-db, key: password}
                  securityContext:
                    allowPrivilegeEscalation: false
                    readOnlyRootFilesystem: true
                    capabilities:
                      drop: [ALL]
                      add: [NET_BIND_SERVICE]
        """;

    public const string GoodService = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          selector: {app: web}
          ports:
            - port: 80
              targetPort: 8080
        """;

    public const string GoodConfigMap = """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: web-config
        data:
          GREETING: "hello"
          ENABLED: "true"
          SIZE: "0012"
          app.yaml: |
            greeting: hello
            list: [a, b]
        """;

    public const string GoodIngress = """
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: web
        spec:
          rules:
            - host: web.example.test
              http:
                paths:
                  - path: /
                    pathType: Prefix
                    backend:
                      service: {name: web, port: {number: 80}}
          tls:
            - hosts: [web.example.test]
              secretName: web-tls
        """;

    /// <summary>Every restricted control broken exactly once, each line marked with its code.</summary>
    public const string EveryControlBroken = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: bad
        spec:
          selector:
            matchLabels: {app: bad}
          template:
            metadata:
              labels: {app: bad}
              annotations:
                container.apparmor.security.beta.kubernetes.io/web: unconfined #> DEPLOY-MANIFEST-PSS-APPARMOR
            spec:
              hostNetwork: true #> DEPLOY-MANIFEST-PSS-HOST-NAMESPACES
              securityContext:
                runAsNonRoot: true
                seccompProfile: {type: RuntimeDefault}
                windowsOptions:
                  hostProcess: true #> DEPLOY-MANIFEST-PSS-HOST-PROCESS
                sysctls:
                  - name: kernel.msgmax #> DEPLOY-MANIFEST-PSS-SYSCTLS
                    value: "65536"
              volumes:
                - name: host
                  hostPath: {path: /etc} #> DEPLOY-MANIFEST-PSS-HOST-PATH
                - name: nfs
                  nfs: {server: nfs.example.test, path: /} #> DEPLOY-MANIFEST-PSS-VOLUME-TYPE
              containers:
                - name: web
                  image: web
                  ports:
                    - containerPort: 8080
                      hostPort: 8080 #> DEPLOY-MANIFEST-PSS-HOST-PORT
                  securityContext:
                    privileged: true #> DEPLOY-MANIFEST-PSS-PRIVILEGED
                    allowPrivilegeEscalation: true #> DEPLOY-MANIFEST-PSS-PRIVILEGE-ESCALATION
                    readOnlyRootFilesystem: false #> DEPLOY-MANIFEST-READ-ONLY-ROOT
                    runAsUser: 0 #> DEPLOY-MANIFEST-PSS-RUN-AS-USER
                    procMount: Unmasked #> DEPLOY-MANIFEST-PSS-PROC-MOUNT
                    seLinuxOptions:
                      user: system_u #> DEPLOY-MANIFEST-PSS-SELINUX
                    capabilities:
                      drop: [ALL]
                      add: [SYS_ADMIN] #> DEPLOY-MANIFEST-PSS-CAPABILITIES-ADD
              initContainers:
                - name: init
                  image: web
                  securityContext:
                    allowPrivilegeEscalation: false
                    readOnlyRootFilesystem: true
                    runAsNonRoot: false #> DEPLOY-MANIFEST-PSS-RUN-AS-NON-ROOT
                    seccompProfile: {type: Unconfined} #> DEPLOY-MANIFEST-PSS-SECCOMP
                    capabilities:
                      drop: [NET_RAW] #> DEPLOY-MANIFEST-PSS-CAPABILITIES-DROP
        """;

    private static readonly Regex Marker = new(@"#> (?<code>[A-Z-]+)\s*$", RegexOptions.Multiline);

    /// <summary>The (code, line) pairs the markers in <paramref name="yaml"/> expect.</summary>
    public static List<(string Code, int Line)> Expected(string yaml) =>
        yaml.Split('\n').Select((l, i) => (Match: Marker.Match(l), Line: i + 1)).Where(x => x.Match.Success)
            .Select(x => (x.Match.Groups["code"].Value, x.Line)).ToList();

    public static IReadOnlyList<ManifestDocument> Parse(string file, string yaml, List<ManifestViolation>? violations = null)
    {
        var v = violations ?? [];
        var docs = ManifestYaml.Parse(file, yaml, v);
        if (violations is null) Assert.That(v, Is.Empty, "the test's YAML must parse");
        return docs;
    }

    public static IReadOnlyList<ManifestViolation> Check(string yaml, ManifestPolicy? policy = null, ImageRule? images = null) =>
        ManifestChecker.Check(Parse("app.yaml", yaml), policy ?? ManifestPolicy.Restricted, images ?? new ImageRule.DeclaredNames(["web", "web-tests"]));
}
