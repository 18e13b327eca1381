"""Pod Security Admission: every pod template meets the `restricted` profile, and the namespace
asks the API server to report (warn, audit) any pod that does not.

The profile's controls, as Kubernetes' Pod Security Standards page lists them (baseline, then
restricted); each finding names the field. Kubernetes' own admission code is Go and the
Python ecosystem has no maintained implementation, so the table below is ours."""

from __future__ import annotations

from conformance import workload
from conformance.plan import figure
from conformance.registry import static

# Baseline: the volume types a restricted pod may use.
ALLOWED_VOLUMES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                   "projected", "secret")
SAFE_SYSCTLS = ("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes")
SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
PROFILE_TYPES = ("RuntimeDefault", "Localhost")
CONTAINER_GROUPS = ("initContainers", "containers", "ephemeralContainers")
PSA_LABEL = "pod-security.kubernetes.io/"


def _pod_findings(spec: dict, base: tuple, annotations: dict):
    """(path, expected, found) for each control the pod template breaks."""
    psc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            yield base + (field,), "false or unset (host namespaces)", True
    for vi, vol in enumerate(spec.get("volumes") or []):
        kinds = [k for k in vol if k != "name"]
        for kind in kinds:
            if kind not in ALLOWED_VOLUMES:
                yield base + ("volumes", vi, kind), f"a volume of type {', '.join(ALLOWED_VOLUMES)}", kind
    for si, sysctl in enumerate(psc.get("sysctls") or []):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield base + ("securityContext", "sysctls", si, "name"), "a safe sysctl", sysctl.get("name")
    if psc.get("runAsUser") == 0:
        yield base + ("securityContext", "runAsUser"), "a non-zero uid", 0
    yield from _selinux(psc, base + ("securityContext",))
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_seccomp is not None and pod_seccomp not in PROFILE_TYPES:
        yield base + ("securityContext", "seccompProfile", "type"), " or ".join(PROFILE_TYPES), pod_seccomp
    pod_apparmor = (psc.get("appArmorProfile") or {}).get("type")
    if pod_apparmor is not None and pod_apparmor not in PROFILE_TYPES:
        yield base + ("securityContext", "appArmorProfile", "type"), " or ".join(PROFILE_TYPES), pod_apparmor
    for group in CONTAINER_GROUPS:
        for ci, c in enumerate(spec.get(group) or []):
            yield from _container_findings(c, psc, base + (group, ci), annotations)


# For pods made elsewhere than the manifests (the runbooks' one-off pods).
pod_findings = _pod_findings


def _selinux(sc: dict, base: tuple):
    options = sc.get("seLinuxOptions") or {}
    if options.get("type", "") not in SELINUX_TYPES:
        yield base + ("seLinuxOptions", "type"), f"one of {', '.join(t for t in SELINUX_TYPES if t)}", options["type"]
    for field in ("user", "role"):
        if options.get(field):
            yield base + ("seLinuxOptions", field), "unset", options[field]


def _container_findings(c: dict, psc: dict, path: tuple, annotations: dict):
    sc = c.get("securityContext") or {}
    where = path + ("securityContext",)
    if sc.get("privileged"):
        yield where + ("privileged",), "false or unset", True
    caps = sc.get("capabilities") or {}
    extra = [cap for cap in caps.get("add") or [] if cap != "NET_BIND_SERVICE"]
    if extra:
        yield where + ("capabilities", "add"), "nothing but NET_BIND_SERVICE", extra
    if "ALL" not in (caps.get("drop") or []):
        yield where + ("capabilities", "drop"), ["ALL"], caps.get("drop")
    for pi, port in enumerate(c.get("ports") or []):
        if port.get("hostPort"):
            yield path + ("ports", pi, "hostPort"), "unset or 0", port["hostPort"]
    if sc.get("procMount", "Default") != "Default":
        yield where + ("procMount",), "Default", sc["procMount"]
    yield from _selinux(sc, where)
    if sc.get("allowPrivilegeEscalation") is not False:
        yield where + ("allowPrivilegeEscalation",), False, sc.get("allowPrivilegeEscalation")
    non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
    if non_root is not True:
        yield where + ("runAsNonRoot",), "true (here or in the pod's securityContext)", non_root
    if sc.get("runAsUser") == 0:
        yield where + ("runAsUser",), "a non-zero uid", 0
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in PROFILE_TYPES:
        yield where + ("seccompProfile", "type"), f"{' or '.join(PROFILE_TYPES)} (here or in the pod's securityContext)", seccomp
    apparmor = (sc.get("appArmorProfile") or {}).get("type")
    if apparmor is not None and apparmor not in PROFILE_TYPES:
        yield where + ("appArmorProfile", "type"), " or ".join(PROFILE_TYPES), apparmor
    legacy = annotations.get(f"container.apparmor.security.beta.kubernetes.io/{c.get('name')}")
    if legacy is not None and legacy != "runtime/default" and not legacy.startswith("localhost/"):
        yield path, "the AppArmor annotation runtime/default or localhost/*", legacy


@static("plan-9.1-pod-security-restricted", "9.1",
        "every pod template meets Pod Security Admission's restricted profile")
def restricted(ctx):
    for obj in ctx.manifests.objects:
        if obj.kind not in workload.POD_SPEC:
            continue
        base = workload.POD_SPEC[obj.kind]
        annotations = obj.get(base[:-1] + ("metadata", "annotations")) or {}
        for path, expected, found in _pod_findings(workload.pod_spec(obj), base, annotations):
            yield ctx.finding(obj, path, f"{expected} (Pod Security restricted)", found)


@static("plan-9.1-pod-security-labels", "9.1",
        "the namespace warns and audits against Pod Security restricted, and does not enforce it (shared)")
def namespace_labels(ctx):
    ns = ctx.manifests.find("Namespace", figure("namespace").expected)
    if ns is None:
        return  # plan-2.1-namespace reports it
    labels = ns.get(("metadata", "labels")) or {}
    for mode in ("warn", "audit"):
        if labels.get(PSA_LABEL + mode) != "restricted":
            yield ctx.finding(ns, ("metadata", "labels", PSA_LABEL + mode), "restricted", labels.get(PSA_LABEL + mode))
    if PSA_LABEL + "enforce" in labels:
        yield ctx.finding(ns, ("metadata", "labels", PSA_LABEL + "enforce"),
                          "no enforce label (the namespace is shared: enforcing would refuse other services' pods)",
                          labels[PSA_LABEL + "enforce"])
