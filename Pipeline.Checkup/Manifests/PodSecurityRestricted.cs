namespace Pipeline.Checkup.Manifests;

/// <summary>
/// The Kubernetes Pod Security Standard "restricted" (baseline controls included) on one pod spec,
/// read the way kubectl's YAML 1.1 parser reads it, and failing closed: a value that is not
/// clearly allowed (a quoted "false", <c>0x0</c>, an unknown type) is a violation.
/// </summary>
internal sealed class PodSecurityRestricted(string file, List<ManifestViolation> violations, ManifestPolicy policy)
{
    internal static readonly HashSet<string> AllowedVolumeSources =
        ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];

    internal static readonly HashSet<string> SafeSysctls =
    [
        "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    ];

    internal static readonly HashSet<string> AllowedSeLinuxTypes = ["container_t", "container_init_t", "container_kvm_t", "container_engine_t"];

    private static readonly string[] ContainerLists = ["containers", "initContainers", "ephemeralContainers"];

    private void Add(string code, ManifestNode at, string message) => violations.Add(new(code, file, at.Line, at.Column, message));

    /// <summary>Checks a pod spec; <paramref name="podMetadata"/> carries the AppArmor annotations; <paramref name="onContainer"/> sees every container.</summary>
    public void Check(ManifestMapping spec, ManifestMapping? podMetadata, string where, Action<ManifestMapping, string> onContainer)
    {
        foreach (var key in new[] { "hostNetwork", "hostPID", "hostIPC" })
        {
            if (spec[key] is { } v && !IsFalseOrNull(v))
                Add(ManifestCodes.HostNamespaces, v, $"{where}: '{key}' must be unset or false (no host namespaces)");
        }

        var podSc = spec.Map("securityContext");
        var podSeccompOk = false;
        var podNonRoot = false;
        if (podSc is not null)
        {
            CheckCommonContext(podSc, $"{where}: securityContext");
            if (podSc.Seq("sysctls") is { } sysctls)
            {
                foreach (var s in sysctls.Items)
                {
                    var name = (s as ManifestMapping)?.Text("name");
                    if (name is null || !SafeSysctls.Contains(name))
                        Add(ManifestCodes.Sysctls, s, $"{where}: sysctl '{ManifestYaml.Short(name ?? "?")}' is not one of the safe sysctls ({string.Join(", ", SafeSysctls.Order(StringComparer.Ordinal))})");
                }
            }
            else if (podSc["sysctls"] is { } other && !IsNull(other))
                Add(ManifestCodes.Sysctls, other, $"{where}: securityContext.sysctls must be a list of safe sysctls");

            podSeccompOk = SeccompOk(podSc, $"{where}: securityContext") == true;
            if (podSc["runAsNonRoot"] is { } rnr)
            {
                podNonRoot = rnr is ManifestScalar { AsBool: true };
                if (!podNonRoot && !IsFalseOrNull(rnr, allowNullOnly: true))
                    Add(ManifestCodes.RunAsNonRoot, rnr, $"{where}: securityContext.runAsNonRoot must be true");
            }
        }
        else if (spec["securityContext"] is { } bad && !IsNull(bad))
            Add(ManifestCodes.NotAnObject, bad, $"{where}: securityContext must be a mapping");

        if (podMetadata?.Map("annotations") is { } annotations)
        {
            foreach (var (k, v) in annotations.Entries)
            {
                if (!k.Value.StartsWith("container.apparmor.security.beta.kubernetes.io/", StringComparison.Ordinal)) continue;
                var text = (v as ManifestScalar)?.Value ?? "";
                if (text != "runtime/default" && !text.StartsWith("localhost/", StringComparison.Ordinal))
                    Add(ManifestCodes.AppArmor, v, $"{where}: AppArmor annotation '{k.Value}' must be runtime/default or localhost/<profile>");
            }
        }

        if (spec.Seq("volumes") is { } volumes)
        {
            foreach (var vol in volumes.Items.OfType<ManifestMapping>())
            {
                var volName = vol.Text("name") ?? "?";
                foreach (var (k, v) in vol.Entries)
                {
                    if (k.Value == "name" || IsNull(v)) continue;
                    if (k.Value == "hostPath")
                        Add(ManifestCodes.HostPath, k, $"{where}: volume '{volName}' is a hostPath volume; use an emptyDir, configMap, secret or persistentVolumeClaim");
                    else if (!AllowedVolumeSources.Contains(k.Value))
                        Add(ManifestCodes.VolumeType, k, $"{where}: volume '{volName}' has type '{k.Value}'; allowed: {string.Join(", ", AllowedVolumeSources.Order(StringComparer.Ordinal))}");
                }
            }
        }

        foreach (var list in ContainerLists)
        {
            if (spec[list] is null || IsNull(spec[list]!)) continue;
            if (spec.Seq(list) is not { } seq)
            {
                Add(ManifestCodes.NotAnObject, spec[list]!, $"{where}: '{list}' must be a list");
                continue;
            }

            foreach (var item in seq.Items)
            {
                if (item is not ManifestMapping c)
                {
                    Add(ManifestCodes.NotAnObject, item, $"{where}: every item of '{list}' must be a mapping");
                    continue;
                }

                var cWhere = $"{where}: {list[..^1]} '{ManifestYaml.Short(c.Text("name") ?? "?")}'";
                CheckContainer(c, cWhere, podSeccompOk, podNonRoot);
                onContainer(c, cWhere);
            }
        }
    }

    private void CheckContainer(ManifestMapping c, string where, bool podSeccompOk, bool podNonRoot)
    {
        if (c.Seq("ports") is { } ports)
        {
            foreach (var p in ports.Items.OfType<ManifestMapping>())
            {
                if (p["hostPort"] is { } hp && !(hp is ManifestScalar { AsInt: 0 } || IsNull(hp)))
                    Add(ManifestCodes.HostPort, hp, $"{where}: hostPort must be unset or 0");
            }
        }

        var sc = c.Map("securityContext");
        if (sc is null)
        {
            var at = (ManifestNode?)c["securityContext"] ?? c;
            Add(ManifestCodes.PrivilegeEscalation, at, $"{where}: securityContext.allowPrivilegeEscalation must be false");
            Add(ManifestCodes.CapabilitiesDrop, at, $"{where}: securityContext.capabilities.drop must include ALL");
            if (!podSeccompOk) Add(ManifestCodes.Seccomp, at, $"{where}: securityContext.seccompProfile.type must be RuntimeDefault or Localhost (here or for the pod)");
            if (!podNonRoot) Add(ManifestCodes.RunAsNonRoot, at, $"{where}: securityContext.runAsNonRoot must be true (here or for the pod)");
            if (policy.RequireReadOnlyRootFilesystem) Add(ManifestCodes.ReadOnlyRoot, at, $"{where}: securityContext.readOnlyRootFilesystem must be true (the operator's policy)");
            return;
        }

        if (sc["privileged"] is { } priv && !IsFalseOrNull(priv))
            Add(ManifestCodes.Privileged, priv, $"{where}: privileged must be unset or false");
        if (sc["procMount"] is { } pm && !IsNull(pm) && (pm as ManifestScalar)?.Value != "Default")
            Add(ManifestCodes.ProcMount, pm, $"{where}: procMount must be unset or Default");
        CheckCommonContext(sc, $"{where}: securityContext");

        if (sc["allowPrivilegeEscalation"] is not ManifestScalar { AsBool: false })
            Add(ManifestCodes.PrivilegeEscalation, (ManifestNode?)sc["allowPrivilegeEscalation"] ?? sc, $"{where}: securityContext.allowPrivilegeEscalation must be false");

        var caps = sc.Map("capabilities");
        var drop = caps?.Seq("drop");
        if (drop is null || !drop.Items.Any(i => i is ManifestScalar { Value: "ALL" }))
            Add(ManifestCodes.CapabilitiesDrop, (ManifestNode?)drop ?? (ManifestNode?)caps ?? sc, $"{where}: securityContext.capabilities.drop must include ALL");
        if (caps?["add"] is { } addNode && !IsNull(addNode))
        {
            if (addNode is ManifestSequence add)
            {
                foreach (var a in add.Items.Where(a => a is not ManifestScalar { Value: "NET_BIND_SERVICE" }))
                    Add(ManifestCodes.CapabilitiesAdd, a, $"{where}: capability '{ManifestYaml.Short((a as ManifestScalar)?.Value ?? "?")}' may not be added (only NET_BIND_SERVICE)");
            }
            else Add(ManifestCodes.CapabilitiesAdd, addNode, $"{where}: securityContext.capabilities.add must be a list (only NET_BIND_SERVICE)");
        }

        if (SeccompOk(sc, $"{where}: securityContext") is null && !podSeccompOk)
            Add(ManifestCodes.Seccomp, sc, $"{where}: securityContext.seccompProfile.type must be RuntimeDefault or Localhost (here or for the pod)");

        var rnr = sc["runAsNonRoot"];
        if (rnr is ManifestScalar { AsBool: true }) { }
        else if (rnr is null || IsNull(rnr))
        {
            if (!podNonRoot) Add(ManifestCodes.RunAsNonRoot, (ManifestNode?)rnr ?? sc, $"{where}: securityContext.runAsNonRoot must be true (here or for the pod)");
        }
        else Add(ManifestCodes.RunAsNonRoot, rnr, $"{where}: securityContext.runAsNonRoot must be true");

        if (policy.RequireReadOnlyRootFilesystem && sc["readOnlyRootFilesystem"] is not ManifestScalar { AsBool: true })
            Add(ManifestCodes.ReadOnlyRoot, (ManifestNode?)sc["readOnlyRootFilesystem"] ?? sc, $"{where}: securityContext.readOnlyRootFilesystem must be true (the operator's policy)");
    }

    /// <summary>Controls that apply alike to the pod's and a container's security context.</summary>
    private void CheckCommonContext(ManifestMapping sc, string where)
    {
        if (sc.Map("windowsOptions")?["hostProcess"] is { } hp && !IsFalseOrNull(hp))
            Add(ManifestCodes.HostProcess, hp, $"{where}.windowsOptions.hostProcess must be unset or false");
        if (sc["runAsUser"] is { } user && !IsNull(user) && user is not ManifestScalar { AsInt: > 0 })
            Add(ManifestCodes.RunAsUserRoot, user, $"{where}.runAsUser must not be 0 (root); use a non-root uid such as 10001");
        if (sc.Map("appArmorProfile")?["type"] is { } aa && !IsNull(aa) && (aa as ManifestScalar)?.Value is not ("RuntimeDefault" or "Localhost"))
            Add(ManifestCodes.AppArmor, aa, $"{where}.appArmorProfile.type must be RuntimeDefault or Localhost");
        if (sc.Map("seLinuxOptions") is { } se)
        {
            if (se["type"] is { } t && !IsNull(t) && !((t as ManifestScalar)?.Value is { } tv && (tv.Length == 0 || AllowedSeLinuxTypes.Contains(tv))))
                Add(ManifestCodes.SeLinux, t, $"{where}.seLinuxOptions.type must be unset or one of {string.Join(", ", AllowedSeLinuxTypes.Order(StringComparer.Ordinal))}");
            foreach (var k in new[] { "user", "role" })
            {
                if (se[k] is { } v && !IsNull(v) && (v as ManifestScalar)?.Value is not "")
                    Add(ManifestCodes.SeLinux, v, $"{where}.seLinuxOptions.{k} must be unset");
            }
        }
    }

    /// <summary>True: RuntimeDefault/Localhost; false: a bad value (reported); null: unset.</summary>
    private bool? SeccompOk(ManifestMapping sc, string where)
    {
        var t = sc.Map("seccompProfile")?["type"];
        if (t is null || IsNull(t)) return null;
        if ((t as ManifestScalar)?.Value is "RuntimeDefault" or "Localhost") return true;
        Add(ManifestCodes.Seccomp, t, $"{where}.seccompProfile.type must be RuntimeDefault or Localhost");
        return false;
    }

    private static bool IsNull(ManifestNode n) => n is ManifestScalar { IsNull: true };

    private static bool IsFalseOrNull(ManifestNode n, bool allowNullOnly = false) =>
        n is ManifestScalar s && (s.IsNull || (!allowNullOnly && s.AsBool == false));
}
